//! The command line. These names are a contract: scripts and deployments call them.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::mock_layer::AppId;

/// layer-idp: an identity provider that answers Layer's authentication challenges with signed
/// identity tokens, with a local Layer emulator for end-to-end tests.
///
/// With no configuration it uses a SQLite database under data/ and development keys under
/// keys/. Settings come from --config (TOML), LAYER_IDP_* environment variables (__ for
/// nesting, e.g. LAYER_IDP_SIGNING__KEY_ID), DATABASE_URL, and these flags, later ones winning.
#[derive(Debug, Parser)]
#[command(name = "layer-idp", version, propagate_version = true)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "LAYER_IDP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB (default: sqlite under data/).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the identity provider (and, when asked, the Layer emulator).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage user accounts.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Identity tokens, for debugging.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage tokens for the admin HTTP API (/admin/…).
    #[command(subcommand, name = "admin-tokens")]
    AdminTokens(AdminTokensCommand),
    /// Check that a running server answers /healthz; exit 0 if it does (for container
    /// HEALTHCHECKs).
    Healthcheck(HealthcheckArgs),
    /// Run only the Layer emulator, trusting an identity provider's keys given by file or
    /// JWKS URL.
    #[command(name = "mock-layer")]
    MockLayer(MockLayerArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Also run the Layer emulator on this address (loopback unless told otherwise); it
    /// trusts this identity provider's keys.
    #[arg(long, value_name = "ADDR:PORT")]
    pub mock_layer_listen: Option<SocketAddr>,
    /// Serve Prometheus metrics at GET /metrics on this address, a listener of its own (never
    /// the public one) [default: off; metrics.listen].
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,
    /// An app the emulator serves (`layer:///apps/staging/UUID` or `…/production/UUID`);
    /// repeat for several [default: one new staging app, printed at start].
    #[arg(long = "mock-layer-app-id", value_name = "APP_ID", value_parser = AppId::parse)]
    pub mock_layer_app_ids: Vec<AppId>,
    /// The Platform API token (`Authorization: Bearer …`) of every app the emulator serves
    /// [default: a new random token per app, printed at start and in GET /_mock/apps].
    #[arg(long, value_name = "TOKEN")]
    pub mock_layer_platform_token: Option<String>,
    /// Require `Authorization: Bearer TOKEN` on the emulator's test controls (/_mock/);
    /// prefer LAYER_IDP_MOCK_LAYER__CONTROL_TOKEN, which other users cannot read in `ps`.
    #[arg(long, value_name = "TOKEN")]
    pub mock_layer_control_token: Option<String>,
    /// Load the emulator's world for one app from a document `GET /_mock/export` gave
    /// [default: mock_layer.import, else empty].
    #[arg(long, value_name = "FILE")]
    pub mock_layer_import: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MockLayerArgs {
    /// Address to listen on [default: mock_layer.listen, else 127.0.0.1:8090].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Serve Prometheus metrics at GET /metrics on this address, a listener of its own (never
    /// the emulator's) [default: off; metrics.listen].
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,
    /// An app to serve; repeat for several [default: one new staging app]. Also accepted as
    /// --mock-layer-app-id, the name `serve` gives it.
    #[arg(
        long = "app-id",
        visible_alias = "mock-layer-app-id",
        value_name = "APP_ID",
        value_parser = AppId::parse
    )]
    pub app_ids: Vec<AppId>,
    /// The Layer provider ID whose identity tokens are trusted (their `iss`).
    #[arg(long, value_name = "PROVIDER_ID")]
    pub provider_id: Option<String>,
    /// A trusted public key: Layer key ID and a PEM file; repeatable.
    #[arg(long = "key", value_name = "KEY_ID=PUBLIC_KEY_FILE", value_parser = parse_pair)]
    pub keys: Vec<(String, String)>,
    /// A layer-idp's JWKS URL (http://HOST:PORT/.well-known/jwks.json), fetched at start
    /// and again for an unknown key ID.
    #[arg(long, value_name = "URL")]
    pub jwks_url: Option<String>,
    /// Restrict a key to an app: APP_ID=KEY_ID; repeatable. Keys never named here are valid
    /// for every app served.
    #[arg(long = "app-key", value_name = "APP_ID=KEY_ID", value_parser = parse_app_key)]
    pub app_keys: Vec<(AppId, String)>,
    /// The Platform API token of every app served [default: a new random token per app,
    /// printed at start and in GET /_mock/apps]. Also accepted as --mock-layer-platform-token.
    #[arg(
        long = "platform-token",
        visible_alias = "mock-layer-platform-token",
        value_name = "TOKEN"
    )]
    pub platform_token: Option<String>,
    /// An app's own provider: APP_ID=PROVIDER_ID; repeatable. Apps never named here trust
    /// --provider-id. A layer-idp's JWKS names each key's app and provider, so with
    /// --jwks-url both are learned without these flags.
    #[arg(long = "app-provider", value_name = "APP_ID=PROVIDER_ID", value_parser = parse_app_key)]
    pub app_providers: Vec<(AppId, String)>,
    /// Require `Authorization: Bearer TOKEN` on the test controls (/_mock/); prefer
    /// LAYER_IDP_MOCK_LAYER__CONTROL_TOKEN, which other users cannot read in `ps`. Also
    /// accepted as --mock-layer-control-token.
    #[arg(
        long = "control-token",
        visible_alias = "mock-layer-control-token",
        value_name = "TOKEN"
    )]
    pub control_token: Option<String>,
    /// Load the world of one app from a document `GET /_mock/export` gave [default:
    /// mock_layer.import, else empty]. Also accepted as --import.
    #[arg(
        long = "mock-layer-import",
        visible_alias = "import",
        value_name = "FILE"
    )]
    pub import: Option<PathBuf>,
}

/// `NAME=VALUE`, split at the last `=` (Layer IDs contain none, file paths rarely).
fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.rsplit_once('=') {
        Some((name, value)) if !name.is_empty() && !value.is_empty() => {
            Ok((name.to_owned(), value.to_owned()))
        }
        _ => Err(format!("{s:?} is not NAME=VALUE")),
    }
}

/// `APP_ID=VALUE` (a key or provider ID), the app ID parsed.
fn parse_app_key(s: &str) -> Result<(AppId, String), String> {
    let (app, key) = parse_pair(s)?;
    Ok((AppId::parse(&app)?, key))
}

impl Command {
    /// The Layer emulator's flags, as configuration overrides.
    pub fn mock_layer_overrides(&self) -> crate::config::MockLayerOverrides {
        use crate::config::{MockLayerKeySettings, MockLayerOverrides};
        match self {
            Command::Serve(args) => MockLayerOverrides {
                listen: args.mock_layer_listen,
                app_ids: args.mock_layer_app_ids.clone(),
                platform_token: args.mock_layer_platform_token.clone(),
                control_token: args.mock_layer_control_token.clone(),
                import: args.mock_layer_import.clone(),
                ..MockLayerOverrides::default()
            },
            Command::MockLayer(args) => MockLayerOverrides {
                listen: args.listen,
                app_ids: args.app_ids.clone(),
                provider_id: args.provider_id.clone(),
                jwks_url: args.jwks_url.clone(),
                keys: args
                    .keys
                    .iter()
                    .map(|(id, file)| MockLayerKeySettings {
                        id: id.clone(),
                        public_key_file: PathBuf::from(file),
                    })
                    .collect(),
                app_keys: args.app_keys.clone(),
                platform_token: args.platform_token.clone(),
                control_token: args.control_token.clone(),
                app_providers: args.app_providers.clone(),
                import: args.import.clone(),
            },
            _ => MockLayerOverrides::default(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate an RSA-2048 key pair as PEM files and print the public key in the form Layer's
    /// dashboard took. The private key file is created with mode 0600.
    Generate {
        /// Directory to write the key files to.
        #[arg(long, value_name = "DIR", default_value = "keys")]
        out_dir: PathBuf,
        /// Base name of the files (NAME.private.pem, NAME.public.pem) [default: a new UUID].
        #[arg(long)]
        name: Option<String>,
    },
    /// List the configured keys: key ID, whether it signs, fingerprint, source. Never prints
    /// private key material.
    List,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user. The password is read from standard input (one line), never from a flag.
    Add(AddUserArgs),
    /// List users.
    List {
        /// Start after this user ID.
        #[arg(long)]
        after: Option<String>,
        /// At most this many users.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Disable a user: logins and identity tokens are refused, sessions end.
    Disable { id: String },
    /// Re-enable a disabled user.
    Enable { id: String },
    /// Delete a user and their sessions. The ID is never given to anyone else.
    Delete { id: String },
    /// Show one user as JSON.
    Show { id: String },
    /// Set a user's password, read from standard input (one line); ends the user's sessions.
    #[command(name = "set-password")]
    SetPassword { id: String },
    /// Change a user's e-mail, profile or email_verified (an empty value clears a profile field).
    Update(UpdateUserArgs),
    /// Import users from another system: JSON lines with id, email, profile fields,
    /// email_verified, and password_hash (bcrypt, Django PBKDF2, PHC argon2/scrypt/PBKDF2) or
    /// password. Re-running skips users already imported.
    Import {
        /// The file to read; - for standard input.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events, oldest first, one JSON object a line.
    List {
        /// Start after this event ID.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many events.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Only events about this user.
        #[arg(long)]
        user_id: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct UpdateUserArgs {
    pub id: String,
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long)]
    pub display_name: Option<String>,
    #[arg(long)]
    pub first_name: Option<String>,
    #[arg(long)]
    pub last_name: Option<String>,
    #[arg(long)]
    pub avatar_url: Option<String>,
    #[arg(long, value_name = "true|false")]
    pub email_verified: Option<bool>,
}

#[derive(Debug, Args)]
pub struct AddUserArgs {
    #[arg(long)]
    pub email: String,
    /// Keep this user ID (when importing users Layer already knows); default: a new UUID.
    #[arg(long)]
    pub id: Option<String>,
    #[arg(long)]
    pub display_name: Option<String>,
    #[arg(long)]
    pub first_name: Option<String>,
    #[arg(long)]
    pub last_name: Option<String>,
    #[arg(long)]
    pub avatar_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Sign an identity token for a user and a nonce with the active key, and print it.
    Mint {
        #[arg(long)]
        user_id: String,
        #[arg(long)]
        nonce: String,
        /// The Layer app the token is for (layer:///apps/staging/UUID, …/production/UUID, or
        /// the bare UUID); required when several [[apps]] are configured.
        #[arg(long, value_name = "APP_ID")]
        app_id: Option<String>,
    },
    /// Check an identity token against Layer's rules, one by one, and say the likely cause of
    /// each failure; exits non-zero when a rule fails. Any token will do, including one your
    /// own code minted. The token is never logged.
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The token; `-` or nothing reads it from standard input (keeps it out of the shell's
    /// history and the process list).
    #[arg(value_name = "TOKEN")]
    pub token: Option<String>,
    /// Check the signature against this JWKS instead of this layer-idp's keys.
    #[arg(long, value_name = "URL", conflicts_with = "key")]
    pub jwks_url: Option<String>,
    /// Check the signature against this public key (PEM) instead, whatever the kid says.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The provider ID iss must be [default: the provider of the key's app].
    #[arg(long, value_name = "PROVIDER_ID")]
    pub provider_id: Option<String>,
    /// The app the token is for, to check that its key belongs to it [default: the app of the
    /// token's iss].
    #[arg(long, value_name = "APP_ID", value_parser = AppId::parse)]
    pub app_id: Option<AppId>,
    /// Check iat and exp against this time (Unix seconds) instead of now.
    #[arg(long, value_name = "UNIX_SECONDS", allow_hyphen_values = true)]
    pub at: Option<i64>,
    /// Print the report as JSON (the shape of POST /admin/tokens/inspect).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdminTokensCommand {
    /// Create an admin token and print it once; only its hash is stored.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List admin tokens (names and dates, never the tokens).
    List,
    /// Revoke an admin token by name.
    Revoke { name: String },
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Address of the server [default: the configured listen address].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn the_import_flag_reaches_the_emulator_s_overrides() {
        let cli = Cli::parse_from(["layer-idp", "serve", "--mock-layer-import", "w1.json"]);
        assert_eq!(
            cli.command.mock_layer_overrides().import,
            Some(PathBuf::from("w1.json"))
        );
        for flag in ["--import", "--mock-layer-import"] {
            let cli = Cli::parse_from(["layer-idp", "mock-layer", flag, "w2.json"]);
            let overrides = cli.command.mock_layer_overrides();
            assert_eq!(overrides.import, Some(PathBuf::from("w2.json")));
            let mut settings = crate::config::MockLayerSettings::default();
            settings.apply(&overrides);
            assert_eq!(settings.import, Some(PathBuf::from("w2.json")));
        }
    }

    #[test]
    fn the_control_token_flag_reaches_the_emulator_s_overrides() {
        let cli = Cli::parse_from(["layer-idp", "serve", "--mock-layer-control-token", "c1"]);
        assert_eq!(
            cli.command.mock_layer_overrides().control_token.as_deref(),
            Some("c1")
        );
        for flag in ["--control-token", "--mock-layer-control-token"] {
            let cli = Cli::parse_from(["layer-idp", "mock-layer", flag, "c2"]);
            assert_eq!(
                cli.command.mock_layer_overrides().control_token.as_deref(),
                Some("c2")
            );
        }
    }

    #[test]
    fn the_platform_token_flag_reaches_the_emulator_s_overrides() {
        let cli = Cli::parse_from(["layer-idp", "serve", "--mock-layer-platform-token", "t1"]);
        assert_eq!(
            cli.command.mock_layer_overrides().platform_token.as_deref(),
            Some("t1")
        );
        for flag in ["--platform-token", "--mock-layer-platform-token"] {
            let cli = Cli::parse_from(["layer-idp", "mock-layer", flag, "t2"]);
            assert_eq!(
                cli.command.mock_layer_overrides().platform_token.as_deref(),
                Some("t2")
            );
        }
    }
}
