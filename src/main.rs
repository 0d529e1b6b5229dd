//! Thin entry point: parse the command line, load settings, start logging, dispatch.

use std::process::ExitCode;

use clap::Parser;
use layer_idp::cli::{Cli, Command};
use layer_idp::commands;
use layer_idp::config::{DatabaseUrl, Overrides, Settings};
use layer_idp::telemetry::{self, LogStream};

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = Overrides {
        config_file: cli.config.clone(),
        listen: match &cli.command {
            Command::Serve(args) => args.listen,
            Command::Healthcheck(args) => args.listen,
            _ => None,
        },
        database_url: cli.database_url.clone().map(DatabaseUrl::new),
        mock_layer: cli.command.mock_layer_overrides(),
        metrics_listen: match &cli.command {
            Command::Serve(args) => args.metrics_listen,
            Command::MockLayer(args) => args.metrics_listen,
            _ => None,
        },
    };
    let settings = match Settings::load(&overrides) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("layer-idp: {e}");
            return ExitCode::from(2);
        }
    };
    let (default_filter, stream) = match cli.command {
        Command::Serve(_) | Command::MockLayer(_) => ("info,sqlx=warn", LogStream::Stdout),
        _ => ("warn", LogStream::Stderr),
    };
    telemetry::init(settings.log.format, default_filter, stream);

    let result = match cli.command {
        Command::Serve(_) => commands::serve(&settings).await,
        Command::Migrate => commands::migrate(&settings).await,
        Command::Keys(command) => commands::keys(&settings, command).await,
        Command::Users(command) => commands::users(&settings, command).await,
        Command::Token(command) => commands::token(&settings, command).await,
        Command::AdminTokens(command) => commands::admin_tokens(&settings, command).await,
        Command::Audit(command) => commands::audit(&settings, command).await,
        Command::Healthcheck(_) => commands::healthcheck(settings.listen).await,
        Command::MockLayer(_) => commands::mock_layer(&settings).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("layer-idp: {e:#}");
            ExitCode::FAILURE
        }
    }
}
