//! The command line, run as the real binary.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::helpers::{jwt_part, spawn_app};

const BIN: &str = env!("CARGO_BIN_EXE_layer-idp");

/// Runs the binary in `dir` with a database and keys of its own there, and no other settings.
pub fn run(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LAYER_IDP_PASSWORDS__ARGON2_MEMORY_KIB", "256")
        .env("LAYER_IDP_PASSWORDS__ARGON2_ITERATIONS", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    {
        let mut pipe = child.stdin.take().unwrap();
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn keys_generate_writes_a_private_key_only_its_owner_can_read_and_prints_the_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &["keys", "generate", "--out-dir", "out", "--name", "prod"],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = stdout(&output);
    assert!(
        printed.starts_with("-----BEGIN PUBLIC KEY-----\n"),
        "{printed}"
    );
    let public = std::fs::read_to_string(dir.path().join("out/prod.public.pem")).unwrap();
    assert_eq!(printed, public);
    let private = std::fs::read_to_string(dir.path().join("out/prod.private.pem")).unwrap();
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(!printed.contains("PRIVATE") && !stderr(&output).contains("PRIVATE KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("out/prod.private.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // openssl agrees the two files are one RSA-2048 pair.
    let from_private = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(dir.path().join("out/prod.private.pem"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(from_private.stdout).unwrap(), public);
    // Never overwrites.
    let again = run(
        dir.path(),
        &["keys", "generate", "--out-dir", "out", "--name", "prod"],
        None,
    );
    assert!(!again.status.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/prod.private.pem")).unwrap(),
        private
    );
}

#[test]
fn an_operator_key_in_pkcs1_form_from_openssl_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out", "layer.pem", "2048"])
        .current_dir(dir.path())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        std::fs::read_to_string(dir.path().join("layer.pem"))
            .unwrap()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );
    let output = Command::new(BIN)
        .current_dir(dir.path())
        .args(["keys", "list"])
        .env(
            "LAYER_IDP_PROVIDER_ID",
            "layer:///providers/11111111-2222-3333-4444-555555555555",
        )
        .env(
            "LAYER_IDP_SIGNING__KEY_ID",
            "layer:///keys/66666666-7777-8888-9999-000000000000",
        )
        .env("LAYER_IDP_SIGNING__PRIVATE_KEY_FILE", "layer.pem")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let listed = stdout(&output);
    assert!(
        listed.contains("layer:///keys/66666666-7777-8888-9999-000000000000\tactive\tRSA-2048"),
        "{listed}"
    );
}

#[test]
fn users_are_added_from_stdin_listed_and_get_tokens_minted_for_debugging() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &[
            "users",
            "add",
            "--email",
            "cli@example.com",
            "--id",
            "cli-user",
            "--display-name",
            "CLI",
        ],
        Some("correct horse battery\n"),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), "cli-user");
    assert!(
        dir.path().join("data/layer-idp.db").exists(),
        "the embedded database was created"
    );

    let listed = stdout(&run(dir.path(), &["users", "list"], None));
    assert!(
        listed.contains("cli-user\tcli@example.com\tCLI\tenabled"),
        "{listed}"
    );

    let mint = [
        "token",
        "mint",
        "--user-id",
        "cli-user",
        "--nonce",
        "abc+/=",
    ];
    let output = run(dir.path(), &mint, None);
    assert!(output.status.success(), "{}", stderr(&output));
    let token = stdout(&output).trim().to_owned();
    let claims = jwt_part(&token, 1);
    assert_eq!(claims["prn"], "cli-user");
    assert_eq!(claims["nce"], "abc+/=");
    assert_eq!(claims["display_name"], "CLI");
    let keys = stdout(&run(dir.path(), &["keys", "list"], None));
    let kid = jwt_part(&token, 0)["kid"].as_str().unwrap().to_owned();
    assert!(keys.contains(&format!("{kid}\tactive")), "{keys}");
    // The same nonce is not minted twice.
    let again = run(dir.path(), &mint, None);
    assert!(!again.status.success());

    let output = run(dir.path(), &["users", "disable", "cli-user"], None);
    assert!(output.status.success());
    let listed = stdout(&run(dir.path(), &["users", "list"], None));
    assert!(listed.contains("\tdisabled"), "{listed}");
    let output = run(dir.path(), &["users", "delete", "cli-user"], None);
    assert!(output.status.success());
    assert_eq!(stdout(&run(dir.path(), &["users", "list"], None)), "");
    let output = run(dir.path(), &["users", "delete", "cli-user"], None);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("no user"), "{}", stderr(&output));
}

#[test]
fn a_command_s_log_goes_to_stderr_and_never_mixes_with_what_it_prints() {
    let dir = tempfile::tempdir().unwrap();
    let add = run(
        dir.path(),
        &[
            "users",
            "add",
            "--email",
            "log@example.com",
            "--id",
            "log-user",
        ],
        Some("correct horse battery\n"),
    );
    assert!(add.status.success(), "{}", stderr(&add));
    // Every log line the command can write, forced on: the listing must stay exactly its rows.
    let listed = Command::new(BIN)
        .current_dir(dir.path())
        .args(["users", "list"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", stderr(&listed));
    let printed = stdout(&listed);
    assert_eq!(printed.lines().count(), 1, "{printed}");
    assert!(
        printed.starts_with("log-user\tlog@example.com"),
        "{printed}"
    );
    let log = stderr(&listed);
    assert!(
        log.lines()
            .any(|line| line.starts_with('{') && line.contains("\"level\"")),
        "the log lines went to stderr, as JSON off a terminal: {log}"
    );
}

#[test]
fn a_too_short_password_from_stdin_is_refused_with_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &["users", "add", "--email", "short@example.com"],
        Some("short\n"),
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("at least 8"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn invalid_configuration_stops_the_start_and_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LAYER_IDP_PASWORDS__MIN_LENGTH", "3")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("paswords"), "{}", stderr(&output));

    let output = Command::new(BIN)
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LAYER_IDP_PROVIDER_ID", "layer:///providers/x")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("LAYER_IDP_SIGNING__KEY_ID"),
        "{}",
        stderr(&output)
    );

    let output = Command::new(BIN)
        .current_dir(dir.path())
        .args(["serve", "--config", "missing.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("missing.toml"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn every_command_explains_itself_with_help() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["keys", "generate", "--help"],
        vec!["keys", "list", "--help"],
        vec!["users", "add", "--help"],
        vec!["users", "list", "--help"],
        vec!["users", "disable", "--help"],
        vec!["users", "delete", "--help"],
        vec!["token", "mint", "--help"],
        vec!["migrate", "--help"],
        vec!["healthcheck", "--help"],
        vec!["admin-tokens", "create", "--help"],
    ] {
        let output = run(dir.path(), &args, None);
        assert!(output.status.success(), "{args:?}");
        assert!(stdout(&output).contains("Usage: layer-idp"), "{args:?}");
    }
    let serve = stdout(&run(dir.path(), &["serve", "--help"], None));
    for flag in ["--listen", "--database-url", "--config"] {
        assert!(serve.contains(flag), "serve --help lacks {flag}");
    }
}

#[tokio::test]
async fn healthcheck_exits_zero_for_a_running_server_and_non_zero_otherwise() {
    let app = spawn_app().await;
    let addr = app.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let ok = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || run(&dir, &["healthcheck", "--listen", &addr], None)
    })
    .await
    .unwrap();
    assert!(ok.status.success(), "{}", stderr(&ok));
    // A proxy in the environment (common in containers) must not make it look dead.
    let behind_proxy = tokio::task::spawn_blocking({
        let addr = app.addr.to_string();
        move || {
            Command::new(BIN)
                .args(["healthcheck", "--listen", &addr])
                .env("HTTP_PROXY", "http://127.0.0.1:9")
                .env("ALL_PROXY", "http://127.0.0.1:9")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(behind_proxy.status.success(), "{}", stderr(&behind_proxy));

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let down = run(dir.path(), &["healthcheck", "--listen", &closed_addr], None);
    assert!(!down.status.success());
}

#[tokio::test]
async fn an_admin_token_from_the_command_line_opens_the_admin_api() {
    let app = spawn_app().await;
    let database_url = app.settings.effective_database_url().expose().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || {
            run(
                &dir,
                &[
                    "--database-url",
                    &database_url,
                    "admin-tokens",
                    "create",
                    "--name",
                    "ops",
                ],
                None,
            )
        }
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let token = stdout(&output).trim().to_owned();
    let response = app
        .admin(reqwest::Method::GET, "/admin/users", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["total"], 0);
}

/// A password the database URL carries; PostgreSQL's `trust` authentication (the test server)
/// ignores it, so the commands below really connect with it.
const URL_PASSWORD: &str = "pw-that-must-not-be-shown";

#[test]
fn a_database_that_cannot_be_opened_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        format!("postgres://idp:{URL_PASSWORD}@127.0.0.1:1/idp"),
        format!("postgres://idp@127.0.0.1:1/idp?password={URL_PASSWORD}"),
    ] {
        let output = run(dir.path(), &["--database-url", &url, "migrate"], None);
        assert!(!output.status.success());
        let (out, err) = (stdout(&output), stderr(&output));
        assert!(
            err.contains("could not open the database postgres://idp"),
            "{err}"
        );
        assert!(err.contains("***"), "{err}");
        assert!(
            !err.contains(URL_PASSWORD) && !out.contains(URL_PASSWORD),
            "{err}"
        );
    }
}

/// The test database's URL with [`URL_PASSWORD`] in it, on PostgreSQL only (SQLite has none).
fn postgres_url_with_password(app: &crate::helpers::TestApp) -> Option<String> {
    let url = app.settings.effective_database_url();
    if !url.is_postgres() {
        return None;
    }
    let mut url = url::Url::parse(url.expose()).unwrap();
    if url.password().is_none() {
        url.set_password(Some(URL_PASSWORD)).unwrap();
    }
    Some(url.to_string())
}

#[tokio::test]
async fn the_start_log_and_the_migrate_command_hide_the_database_password() {
    let app = spawn_app().await;
    let Some(url) = postgres_url_with_password(&app) else {
        return; // nothing to hide on SQLite
    };
    let password = url::Url::parse(&url)
        .unwrap()
        .password()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let migrate = tokio::task::spawn_blocking({
        let (dir, url) = (dir.path().to_path_buf(), url.clone());
        move || run(&dir, &["--database-url", &url, "migrate"], None)
    })
    .await
    .unwrap();
    assert!(migrate.status.success(), "{}", stderr(&migrate));
    let printed = stdout(&migrate);
    assert!(
        printed.contains("migrations applied to postgres://"),
        "{printed}"
    );
    assert!(!printed.contains(&password), "{printed}");

    let log = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || start_log_of_serve(&dir, &url)
    })
    .await
    .unwrap();
    let start = log
        .lines()
        .find(|line| line.contains("identity provider listening"))
        .unwrap_or_else(|| panic!("no start line in {log}"));
    assert!(start.contains("\"database\":\"postgres://"), "{start}");
    assert!(start.contains("***"), "{start}");
    assert!(!log.contains(&password), "{log}");
}

/// Runs `serve` until it logs that it listens (or exits), stops it, and returns its log.
fn start_log_of_serve(dir: &Path, database_url: &str) -> String {
    let mut serving = Serving::start(dir, &["--database-url", database_url]);
    serving.stop()
}

/// `layer-idp serve` on a free port, logging JSON lines, read up to its start line.
struct Serving {
    child: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    log: String,
    /// Where it listens, from the start line.
    addr: Option<std::net::SocketAddr>,
}

impl Serving {
    fn start(dir: &Path, global_args: &[&str]) -> Serving {
        use std::io::BufRead;
        let mut child = Command::new(BIN)
            .current_dir(dir)
            .args(global_args)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LAYER_IDP_LOG__FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut log = String::new();
        let mut addr = None;
        loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                break;
            }
            log.push_str(&line);
            if line.contains("identity provider listening") {
                let start: Value = serde_json::from_str(&line).unwrap();
                addr = start["listen"].as_str().and_then(|a| a.parse().ok());
                break;
            }
        }
        Serving {
            child,
            stdout,
            log,
            addr,
        }
    }

    /// Stops the server and returns everything it logged (stdout and stderr).
    fn stop(&mut self) -> String {
        use std::io::Read;
        let _ = self.child.kill();
        let _ = self.stdout.read_to_string(&mut self.log);
        let _ = self.child.wait();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut self.log);
        }
        std::mem::take(&mut self.log)
    }
}

#[test]
fn a_request_the_http_parser_refuses_is_logged_at_info_not_error() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut serving = Serving::start(dir.path(), &[]);
    let addr = serving.addr.unwrap_or_else(|| panic!("{}", serving.stop()));
    for request in [
        &b"NOT HTTP AT ALL\r\n\r\n"[..],
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
    ] {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(request).unwrap();
        // Until the server closes the connection: it logs the dispatch error before that.
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(
            answer.contains("\"error\":\"malformed_request\""),
            "{answer}"
        );
    }
    let log = serving.stop();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("request refused by the HTTP parser"))
        .collect();
    assert_eq!(refused.len(), 2, "{log}");
    assert!(
        refused.iter().all(|l| l.contains("\"level\":\"INFO\"")),
        "{log}"
    );
    assert!(!log.contains("\"level\":\"ERROR\""), "{log}");
}

#[tokio::test]
async fn with_no_smtp_server_mail_goes_to_the_outbox_and_no_token_reaches_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut serving = Serving::start(dir.path(), &[]);
    let addr = serving.addr.unwrap_or_else(|| panic!("{}", serving.stop()));
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    let signed_up = client
        .post(format!("{base}/users"))
        .json(&serde_json::json!({"email": "ola@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_up.status().as_u16(), 201);
    let reset = client
        .post(format!("{base}/password_resets"))
        .json(&serde_json::json!({"email": "ola@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status().as_u16(), 202);
    let outbox = dir.path().join("data").join("outbox");
    let verify = crate::mail::messages(&outbox, "ola@example.com", "Confirm", 1).await;
    let resets = crate::mail::messages(&outbox, "ola@example.com", "Reset", 1).await;
    let tokens = [
        crate::mail::token_in(&verify[0]),
        crate::mail::token_in(&resets[0]),
    ];
    // A token in a URL the server answers: the request log names the route, not the query.
    let form = client
        .get(format!("{base}/password_resets/form?token={}", tokens[1]))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status().as_u16(), 200);
    let log = serving.stop();
    let files: Vec<String> = std::fs::read_dir(&outbox)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    for file in &files {
        assert!(log.contains(file.as_str()), "the log names {file}: {log}");
    }
    // The messages hold single-use links: only the service's own user may read them.
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&outbox), 0o700);
    for file in &files {
        assert_eq!(mode(&outbox.join(file)), 0o600, "{file}");
    }
    assert!(log.contains("/password_resets/form"), "{log}");
    for token in &tokens {
        assert_eq!(token.len(), 43);
        assert!(!log.contains(token.as_str()), "a token was logged: {log}");
    }
}

#[test]
fn users_import_reads_standard_input_reports_bad_lines_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run(dir.path(), &["migrate"], None).status.success());
    let bcrypt = "$2b$10$4sUynEODO0cYEmODNFgyQ.zaqQ2oQGSETwwe7OQiXI4EHOLqt11VG";
    let input = format!(
        "{}\n{}\n{}\n",
        serde_json::json!({"id": "imp-1", "email": "imp1@example.com", "password_hash": bcrypt,
                           "display_name": "Imp", "email_verified": true}),
        serde_json::json!({"id": "imp-2", "email": "imp2@example.com", "password_hash": "crypt$x"}),
        serde_json::json!({"id": "imp-3", "email": "imp3@example.com", "password": "a long password"}),
    );
    let first = run(dir.path(), &["users", "import", "-"], Some(&input));
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).starts_with("3 lines: 2 created, 0 skipped, 1 refused"),
        "{}",
        stdout(&first)
    );
    assert!(stderr(&first).contains("line 2: refused: an unsupported password hash"));
    let again = run(dir.path(), &["users", "import", "-"], Some(&input));
    assert!(
        stdout(&again).starts_with("3 lines: 0 created, 2 skipped, 1 refused"),
        "{}",
        stdout(&again)
    );

    let shown = run(dir.path(), &["users", "show", "imp-1"], None);
    let user: Value = serde_json::from_str(&stdout(&shown)).unwrap();
    assert_eq!(user["email"], "imp1@example.com");
    assert_eq!(user["display_name"], "Imp");

    let updated = run(
        dir.path(),
        &[
            "users",
            "update",
            "imp-1",
            "--display-name",
            "",
            "--email",
            "new@example.com",
        ],
        None,
    );
    assert!(updated.status.success(), "{}", stderr(&updated));
    let user: Value = serde_json::from_str(&stdout(&updated)).unwrap();
    assert_eq!(user["email"], "new@example.com");
    assert_eq!(user["display_name"], Value::Null);

    let short = run(
        dir.path(),
        &["users", "set-password", "imp-1"],
        Some("short\n"),
    );
    assert!(!short.status.success());
    let set = run(
        dir.path(),
        &["users", "set-password", "imp-1"],
        Some("a brand new password\n"),
    );
    assert!(set.status.success(), "{}", stderr(&set));
    let missing = run(dir.path(), &["users", "show", "nobody"], None);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("there is no user with the ID nobody"));
}

#[tokio::test]
async fn command_line_actions_are_audited_and_an_import_is_one_event() {
    let app = spawn_app().await;
    let database_url = app.settings.effective_database_url().expose().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let bcrypt = "$2b$10$4sUynEODO0cYEmODNFgyQ.zaqQ2oQGSETwwe7OQiXI4EHOLqt11VG";
    let import = format!(
        "{}\n{}\n{}\n",
        serde_json::json!({"id": "aud-1", "email": "aud1@example.com", "password_hash": bcrypt}),
        serde_json::json!({"id": "aud-2", "email": "aud2@example.com", "password_hash": bcrypt}),
        serde_json::json!({"id": "aud-3", "email": "aud3@example.com", "password_hash": "crypt$x"}),
    );
    let steps: Vec<(Vec<&str>, Option<String>)> = vec![
        (
            vec![
                "users",
                "add",
                "--email",
                "cli@example.com",
                "--id",
                "cli-1",
            ],
            Some("a long password\n".to_owned()),
        ),
        (vec!["users", "disable", "cli-1"], None),
        (vec!["users", "enable", "cli-1"], None),
        (
            vec!["users", "set-password", "cli-1"],
            Some("another long password\n".to_owned()),
        ),
        (
            vec!["users", "update", "cli-1", "--display-name", "Cli"],
            None,
        ),
        (vec!["users", "import", "-"], Some(import.clone())),
        (vec!["users", "import", "-"], Some(import)),
        (vec!["users", "delete", "cli-1"], None),
        (vec!["admin-tokens", "create", "--name", "ops"], None),
        (vec!["admin-tokens", "revoke", "ops"], None),
        (vec!["users", "disable", "nobody"], None),
    ];
    for (args, input) in steps {
        let dir = dir.path().to_path_buf();
        let database_url = database_url.clone();
        let output = tokio::task::spawn_blocking(move || {
            let mut all = vec!["--database-url", database_url.as_str()];
            all.extend(args.iter().copied());
            let output = run(&dir, &all, input.as_deref());
            (args.join(" "), output)
        })
        .await
        .unwrap();
        let (args, output) = output;
        assert_eq!(
            output.status.success(),
            args != "users disable nobody",
            "{args}: {}",
            stderr(&output)
        );
    }
    let events = app.store.list_audit_events(0, 100, None).await.unwrap();
    let summary: Vec<(&str, &str, Option<&str>, &str)> = events
        .iter()
        .map(|e| {
            (
                e.kind.as_str(),
                e.actor.as_str(),
                e.subject.as_deref(),
                e.outcome.as_str(),
            )
        })
        .collect();
    let cli = "command-line";
    assert_eq!(
        summary,
        vec![
            ("admin_create_user", cli, Some("cli-1"), "done"),
            ("admin_disable_user", cli, Some("cli-1"), "done"),
            ("admin_enable_user", cli, Some("cli-1"), "done"),
            ("admin_set_password", cli, Some("cli-1"), "done"),
            ("admin_update_user", cli, Some("cli-1"), "done"),
            ("users_import", cli, None, "created=2 skipped=0 refused=1"),
            ("users_import", cli, None, "created=0 skipped=2 refused=1"),
            ("admin_delete_user", cli, Some("cli-1"), "done"),
            ("admin_token_create", cli, None, "name=ops"),
            ("admin_token_revoke", cli, None, "name=ops"),
        ]
    );
    assert!(events.iter().all(|e| e.client.is_none()));
}
