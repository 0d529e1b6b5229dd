//! What each command-line command does. Output meant for scripts goes to stdout; logs go to
//! the log.

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::app_id::ClientAppId;
use crate::cli::{
    AddUserArgs, AdminTokensCommand, InspectArgs, KeysCommand, TokenCommand, UsersCommand,
};
use crate::clock::unix_now;
use crate::config::{Settings, display_path};
use crate::domain::{Nonce, PasswordPolicy};
use crate::identity_token::keys::KeySet;
use crate::identity_token::{self, Options};
use crate::idp::accounts::{self, NewAccount, ProfileInput, UserChanges};
use crate::idp::audit::{self, Actor, Event};
use crate::idp::keys::{self, KeyOrigin};
use crate::idp::password::{HashRequest, PasswordHasher};
use crate::idp::sessions;
use crate::idp::tokens::TokenIssuer;
use crate::metrics::Metrics;
use crate::startup::{Application, load_keys, open_store, worker_count};
use crate::store::{Store, StoreError};

pub async fn serve(settings: &Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}

/// Runs the Layer emulator alone, until a signal.
pub async fn mock_layer(settings: &Settings) -> anyhow::Result<()> {
    let addr = settings
        .mock_layer
        .listen
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8090)));
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("could not listen on {addr} (set --listen)"))?;
    let metrics_listener = settings
        .metrics
        .listen
        .map(|addr| {
            std::net::TcpListener::bind(addr).with_context(|| {
                format!("could not listen on {addr} (set --metrics-listen or metrics.listen)")
            })
        })
        .transpose()?;
    let metrics = Arc::new(Metrics::new());
    let bound = listener.local_addr()?;
    let state = crate::mock_layer::MockLayer::build(&settings.mock_layer, None, bound).await?;
    state.register_metrics(&metrics);
    let serving = crate::mock_layer::Serving {
        workers: worker_count(settings),
        http_metrics: metrics.http("mock_layer"),
        stopping: crate::http_server::Stopping::after(settings.http.shutdown_timeout_secs),
    };
    let running = crate::mock_layer::run(state, listener, serving)?;
    let metrics_server = metrics_listener
        .map(|listener| crate::metrics::serve(metrics, listener))
        .transpose()?;
    // As `serve` does: on SIGTERM or Ctrl-C, sockets hear "going away", requests finish.
    let handle = running.server.handle();
    let mut server = tokio::spawn(running.server);
    let metrics_handle = metrics_server.as_ref().map(|m| m.server.handle());
    let _metrics_task = metrics_server.map(|m| tokio::spawn(m.server));
    tokio::select! {
        joined = &mut server => return Ok(joined??),
        signal = crate::startup::until_stop_signal() => {
            tracing::info!(signal, "stopping: finishing the requests in flight");
        }
    }
    running.state.going_away();
    handle.stop(true).await;
    if let Some(metrics) = metrics_handle {
        metrics.stop(true).await;
    }
    server.await??;
    Ok(())
}

pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    open_store(settings).await?;
    println!(
        "migrations applied to {}",
        settings.effective_database_url()
    );
    Ok(())
}

pub async fn keys(settings: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate { out_dir, name } => {
            let name = name.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
                bail!("--name must be a plain file name");
            }
            std::fs::create_dir_all(&out_dir)
                .with_context(|| format!("could not create {}", display_path(&out_dir)))?;
            let private_path = out_dir.join(format!("{name}.private.pem"));
            let public_path = out_dir.join(format!("{name}.public.pem"));
            let key = tokio::task::spawn_blocking(keys::generate_key).await??;
            keys::write_private_file(&private_path, &key.private_pem)?;
            keys::write_public_file(&public_path, &key.public.to_pem())?;
            eprintln!(
                "private key: {} (mode 0600; keep it secret, never commit it)",
                display_path(&private_path)
            );
            eprintln!("public key:  {}", display_path(&public_path));
            eprintln!("fingerprint: {}", key.public.fingerprint());
            eprintln!();
            eprintln!(
                "Upload this public key to Layer; Layer assigns it a key ID (layer:///keys/<uuid>)."
            );
            eprintln!("Then set signing.key_id and signing.private_key_file (see README).");
            eprintln!();
            print!("{}", key.public.to_pem());
            Ok(())
        }
        KeysCommand::List => {
            let apps = load_keys(settings).await?;
            for (i, ring) in apps.rings().iter().enumerate() {
                if i > 0 {
                    println!();
                }
                if let Some(app_id) = ring.app_id() {
                    println!("app_id: {app_id}");
                }
                println!("provider_id: {}", ring.provider_id());
                if let KeyOrigin::Development { dir } = ring.origin() {
                    println!("(development credentials in {})", display_path(dir));
                }
                for key in ring.keys() {
                    let role = if key.id() == ring.active().id() {
                        "active"
                    } else if key.can_sign() {
                        "standby"
                    } else {
                        "published"
                    };
                    println!(
                        "{}\t{role}\tRSA-{}\tsha256:{}\t{}",
                        key.id(),
                        key.public().modulus_bits(),
                        key.public().fingerprint(),
                        key.source()
                    );
                }
            }
            Ok(())
        }
    }
}

pub async fn users(settings: &Settings, command: UsersCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        UsersCommand::Add(args) => add_user(settings, &store, args).await,
        UsersCommand::List { after, limit } => {
            for user in store.list_users(after.as_deref(), limit).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    user.id,
                    user.email,
                    user.display_name.as_deref().unwrap_or("-"),
                    if user.is_disabled() {
                        "disabled"
                    } else {
                        "enabled"
                    }
                );
            }
            Ok(())
        }
        UsersCommand::Disable { id } => {
            store
                .set_disabled(&id, true, unix_now())
                .await?
                .with_context(|| format!("there is no user with the ID {id}"))?;
            command_line_event(&store, "admin_disable_user", Some(&id), "done").await;
            println!("disabled {id}");
            Ok(())
        }
        UsersCommand::Enable { id } => {
            store
                .set_disabled(&id, false, unix_now())
                .await?
                .with_context(|| format!("there is no user with the ID {id}"))?;
            command_line_event(&store, "admin_enable_user", Some(&id), "done").await;
            println!("enabled {id}");
            Ok(())
        }
        UsersCommand::Show { id } => {
            let user = store
                .find_user(&id)
                .await?
                .with_context(|| format!("there is no user with the ID {id}"))?;
            println!("{}", serde_json::to_string_pretty(&user_json(&user))?);
            Ok(())
        }
        UsersCommand::SetPassword { id } => {
            let changes = UserChanges {
                password: Some(read_password()?),
                ..UserChanges::default()
            };
            update_user(settings, &store, &id, changes).await?;
            command_line_event(&store, "admin_set_password", Some(&id), "done").await;
            println!("password set for {id}; their sessions ended");
            Ok(())
        }
        UsersCommand::Update(args) => {
            // An empty value clears a profile field.
            let field = |v: Option<String>| v.map(|v| if v.is_empty() { None } else { Some(v) });
            let changes = UserChanges {
                email: args.email,
                display_name: field(args.display_name),
                first_name: field(args.first_name),
                last_name: field(args.last_name),
                avatar_url: field(args.avatar_url),
                email_verified: args.email_verified,
                password: None,
            };
            let user = update_user(settings, &store, &args.id, changes).await?;
            command_line_event(&store, "admin_update_user", Some(&user.id), "done").await;
            println!("{}", serde_json::to_string_pretty(&user_json(&user))?);
            Ok(())
        }
        UsersCommand::Import { file } => import_users(settings, &store, &file).await,
        UsersCommand::Delete { id } => {
            if !store.delete_user(&id).await? {
                bail!("there is no user with the ID {id}");
            }
            command_line_event(&store, "admin_delete_user", Some(&id), "done").await;
            println!("deleted {id}");
            Ok(())
        }
    }
}

fn user_json(user: &crate::store::User) -> serde_json::Value {
    serde_json::json!({
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "avatar_url": user.avatar_url,
        "disabled": user.is_disabled(),
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    })
}

async fn update_user(
    settings: &Settings,
    store: &Arc<dyn Store>,
    id: &str,
    changes: UserChanges,
) -> anyhow::Result<crate::store::User> {
    let hasher = {
        let passwords = settings.passwords.clone();
        tokio::task::spawn_blocking(move || PasswordHasher::new(&passwords)).await??
    };
    Ok(accounts::update_user(
        store.as_ref(),
        &hasher,
        id,
        changes,
        HashRequest::command_line(),
        unix_now(),
    )
    .await?)
}

async fn import_users(
    settings: &Settings,
    store: &Arc<dyn Store>,
    file: &std::path::Path,
) -> anyhow::Result<()> {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let hasher = {
        let passwords = settings.passwords.clone();
        tokio::task::spawn_blocking(move || PasswordHasher::new(&passwords)).await??
    };
    let (input, length): (Box<dyn BufRead>, Option<u64>) = if file.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let f = std::fs::File::open(file)
            .with_context(|| format!("could not open {}", file.display()))?;
        let length = f.metadata().ok().map(|m| m.len());
        (
            Box::new(std::io::BufReader::with_capacity(64 * 1024, f)),
            length,
        )
    };
    // Drawn only on a terminal: indicatif hides itself when standard error is not one.
    let bar = ProgressBar::with_draw_target(length, ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template(
        "{wide_bar} {percent}% {msg} ({binary_bytes}, ETA {eta})",
    )?);
    let started = std::time::Instant::now();
    let summary = crate::idp::import::import(
        store.as_ref(),
        &hasher,
        input,
        |line, reason| bar.suspend(|| eprintln!("line {line}: refused: {reason}")),
        |bytes, lines| {
            bar.set_position(bytes);
            if lines % 256 == 0 {
                let rate = lines as f64 / started.elapsed().as_secs_f64().max(0.001);
                bar.set_message(format!("{lines} lines, {rate:.0} lines/s"));
            }
        },
    )
    .await?;
    bar.finish_and_clear();
    // One event for the run, not one per user: an import can bring millions.
    let outcome = format!(
        "created={} skipped={} refused={}",
        summary.created, summary.skipped, summary.refused
    );
    command_line_event(store, "users_import", None, &outcome).await;
    println!(
        "{} lines: {} created, {} skipped, {} refused ({:.1} s)",
        summary.lines,
        summary.created,
        summary.skipped,
        summary.refused,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn add_user(
    settings: &Settings,
    store: &Arc<dyn Store>,
    args: AddUserArgs,
) -> anyhow::Result<()> {
    let policy = PasswordPolicy {
        min_chars: settings.passwords.min_length,
        max_chars: settings.passwords.max_length,
    };
    let profile = ProfileInput {
        display_name: args.display_name,
        first_name: args.first_name,
        last_name: args.last_name,
        avatar_url: args.avatar_url,
    };
    let account = NewAccount::parse(
        args.id.as_deref(),
        &args.email,
        &read_password()?,
        &profile,
        policy,
    )?;
    let hasher = {
        let passwords = settings.passwords.clone();
        tokio::task::spawn_blocking(move || PasswordHasher::new(&passwords)).await??
    };
    let user = accounts::create_account(
        store.as_ref(),
        &hasher,
        account,
        HashRequest::command_line(),
    )
    .await?;
    command_line_event(store, "admin_create_user", Some(&user.id), "done").await;
    println!("{}", user.id);
    Ok(())
}

/// Records what the operator did on the command line in the audit trail.
async fn command_line_event(
    store: &Arc<dyn Store>,
    kind: &str,
    subject: Option<&str>,
    outcome: &str,
) {
    let event = Event {
        kind,
        actor: Actor::CommandLine,
        subject,
        client: None,
        outcome,
    };
    audit::record(store.as_ref(), unix_now(), event).await;
}

/// One line from standard input, which must not be a terminal (the password would echo).
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        bail!(
            "the password is read from standard input; pipe it in, e.g. \
             `printf '%s\\n' \"$PASSWORD\" | layer-idp users add --email …`"
        );
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    Ok(password.to_owned())
}

pub async fn token(settings: &Settings, command: TokenCommand) -> anyhow::Result<()> {
    let (user_id, nonce, app_id) = match command {
        TokenCommand::Mint {
            user_id,
            nonce,
            app_id,
        } => (user_id, nonce, app_id),
        TokenCommand::Inspect(args) => return inspect_token(settings, args).await,
    };
    let nonce = Nonce::parse(&nonce)?;
    let requested = app_id
        .as_deref()
        .map(ClientAppId::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--app-id: {e}"))?;
    let apps = Arc::new(load_keys(settings).await?);
    let keys = apps
        .choose(requested.as_ref())
        .map_err(|e| anyhow::anyhow!("--app-id {}", e.reason))?
        .clone();
    let store = open_store(settings).await?;
    let user = store
        .find_user(&user_id)
        .await?
        .with_context(|| format!("there is no user with the ID {user_id}"))?;
    if user.is_disabled() {
        bail!("the user {user_id} is disabled");
    }
    let issuer = TokenIssuer::new(apps, store, &crate::idp::metrics::IdpMetrics::new());
    let token = issuer
        .issue(&user, &nonce, &keys, unix_now())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{token}");
    Ok(())
}

/// `token inspect`: the report on stdout; an error (and a non-zero exit) when a rule fails.
async fn inspect_token(settings: &Settings, args: InspectArgs) -> anyhow::Result<()> {
    let token = match args.token.as_deref() {
        Some(token) if token != "-" => token.to_owned(),
        _ => {
            let mut input = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut input)
                .context("could not read the token from standard input")?;
            input
        }
    };
    // A token pasted from a terminal or a file ends in a line break; inside, nothing is
    // trimmed, so stray whitespace is reported as the mistake it is.
    let token = token.trim_end_matches(['\n', '\r']);
    let keys = match (&args.jwks_url, &args.key) {
        (Some(url), _) => KeySet::from_jwks_url(url)
            .await
            .map_err(|e| anyhow::anyhow!("--jwks-url: {e}"))?,
        (None, Some(path)) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("could not read {}", display_path(path)))?;
            keys::inspection_key_set(&pem, &display_path(path))?
        }
        (None, None) => load_keys(settings).await?.inspection_keys(),
    };
    let options = Options {
        app: args.app_id,
        provider_id: args.provider_id,
        now: args.at.unwrap_or_else(unix_now),
    };
    let report = identity_token::inspect(token, &keys, &options);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    if !report.valid {
        let failed = report.rules.iter().filter(|r| !r.ok).count();
        bail!("the identity token fails {failed} rule(s)");
    }
    Ok(())
}

pub async fn audit(settings: &Settings, command: crate::cli::AuditCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        crate::cli::AuditCommand::List {
            after,
            limit,
            user_id,
        } => {
            for event in store
                .list_audit_events(after, limit, user_id.as_deref())
                .await?
            {
                println!("{}", serde_json::to_string(&event)?);
            }
            Ok(())
        }
    }
}

pub async fn admin_tokens(settings: &Settings, command: AdminTokensCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    match command {
        AdminTokensCommand::Create { name } => {
            if name.trim().is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
                bail!("--name must be 1 to 100 printable characters");
            }
            let (token, hash) = sessions::new_token()?;
            match store.create_admin_token(&name, &hash, unix_now()).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => bail!("an admin token named {name} already exists"),
                Err(e) => return Err(e.into()),
            }
            let outcome = format!("name={name}");
            command_line_event(&store, "admin_token_create", None, &outcome).await;
            eprintln!("admin token {name} created; it is shown once and stored only as a hash:");
            println!("{token}");
            Ok(())
        }
        AdminTokensCommand::List => {
            for token in store.list_admin_tokens().await? {
                let last_used = token
                    .last_used_at
                    .map(crate::clock::rfc3339)
                    .unwrap_or_else(|| "never".to_owned());
                println!(
                    "{}\tcreated {}\tlast used {last_used}",
                    token.name,
                    crate::clock::rfc3339(token.created_at)
                );
            }
            Ok(())
        }
        AdminTokensCommand::Revoke { name } => {
            if !store.revoke_admin_token(&name).await? {
                bail!("there is no admin token named {name}");
            }
            let outcome = format!("name={name}");
            command_line_event(&store, "admin_token_revoke", None, &outcome).await;
            println!("revoked {name}");
            Ok(())
        }
    }
}

/// `GET /healthz` on a running server; succeeds only on 200.
pub async fn healthcheck(addr: SocketAddr) -> anyhow::Result<()> {
    // A server listening on every interface is checked on loopback.
    let addr = crate::net::reachable(addr);
    let url = format!("http://{addr}/healthz");
    // No proxy: the server is on this host, and a proxy variable in a container's environment
    // must not make a healthy server look dead.
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("nothing answers at {url}"))?;
    if response.status() == reqwest::StatusCode::OK {
        println!("ok");
        Ok(())
    } else {
        bail!("{url} answered {}", response.status())
    }
}
