//! Zero-configuration start and restart persistence: users and keys survive a restart.

use serde_json::Value;

use layer_idp::store::Backend;

use crate::helpers::{jwt_part, spawn_app, spawn_app_with};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn without_keys_configured_development_credentials_are_made_once_and_kept() {
    let app = spawn_app_with(|s| {
        s.provider_id = None;
        s.signing.keys.clear();
    })
    .await;
    let keys_dir = app.keys_dir();
    let ids: Value =
        serde_json::from_slice(&std::fs::read(keys_dir.join("development.json")).unwrap()).unwrap();
    let provider_id = ids["provider_id"].as_str().unwrap().to_owned();
    let key_id = ids["key_id"].as_str().unwrap().to_owned();
    assert!(provider_id.starts_with("layer:///providers/"));
    assert!(uuid::Uuid::parse_str(provider_id.trim_start_matches("layer:///providers/")).is_ok());
    assert!(key_id.starts_with("layer:///keys/"));
    assert!(uuid::Uuid::parse_str(key_id.trim_start_matches("layer:///keys/")).is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keys_dir.join("development-private.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let user = app.sign_up("dev@example.com", PASSWORD).await;
    let token = app
        .identity_token("dev@example.com", PASSWORD, "before")
        .await;
    assert_eq!(jwt_part(&token, 0)["kid"], key_id.as_str());
    assert_eq!(jwt_part(&token, 1)["iss"], provider_id.as_str());
    let jwks = app.get_jwks().await;

    let app = app.restart().await;
    assert_eq!(app.get_jwks().await, jwks, "the same key after a restart");
    let token = app
        .identity_token("dev@example.com", PASSWORD, "after")
        .await;
    assert_eq!(jwt_part(&token, 0)["kid"], key_id.as_str());
    assert_eq!(jwt_part(&token, 1)["iss"], provider_id.as_str());
    assert_eq!(jwt_part(&token, 1)["prn"], user["id"]);
}

#[tokio::test]
async fn users_sessions_and_signed_nonces_survive_a_restart() {
    let app = spawn_app().await;
    let user = app.sign_up("stay@example.com", PASSWORD).await;
    let session = app.session_token("stay@example.com", PASSWORD).await;
    app.identity_token("stay@example.com", PASSWORD, "signed-before-restart")
        .await;

    let app = app.restart().await;
    let me: Value = app.get_me(&session).await.json().await.unwrap();
    assert_eq!(me["id"], user["id"]);
    let response = app
        .post_identity_tokens(&session, "signed-before-restart")
        .await;
    assert_eq!(
        response.status(),
        409,
        "a restart does not make a nonce signable again"
    );
    assert_eq!(
        app.post_identity_tokens(&session, "new").await.status(),
        200
    );
}

#[cfg(unix)]
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_database_its_side_files_and_its_directory_are_private() {
    let app = spawn_app().await;
    if app.store.backend() != Backend::Sqlite {
        return; // PostgreSQL keeps its own files
    }
    // A write, so the WAL and shared-memory files exist while the app runs.
    app.sign_up("private@example.com", PASSWORD).await;
    let data = app.settings.data_dir.clone();
    assert_eq!(mode_of(&data), 0o700);
    for file in ["layer-idp.db", "layer-idp.db-wal", "layer-idp.db-shm"] {
        assert_eq!(mode_of(&data.join(file)), 0o600, "{file}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_database_directory_left_open_by_an_earlier_start_is_narrowed() {
    use std::os::unix::fs::PermissionsExt;
    let open = |path: &std::path::Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    // Our own directory, as an earlier version left it: 0755 with a 0644 database.
    let ours = tempfile::tempdir().unwrap();
    let ours_dir = ours.path().join("data");
    std::fs::create_dir(&ours_dir).unwrap();
    open(&ours_dir, 0o755);
    std::fs::write(ours_dir.join("layer-idp.db"), b"").unwrap();
    open(&ours_dir.join("layer-idp.db"), 0o644);
    // A shared directory the operator put the database in: its other files stay reachable.
    let shared = tempfile::tempdir().unwrap();
    let shared_dir = shared.path().join("srv");
    std::fs::create_dir(&shared_dir).unwrap();
    open(&shared_dir, 0o755);
    std::fs::write(shared_dir.join("README"), b"other things").unwrap();

    for (dir, dir_mode) in [(&ours_dir, 0o700), (&shared_dir, 0o755)] {
        let app = spawn_app_with(|s| s.data_dir = dir.clone()).await;
        if app.store.backend() != Backend::Sqlite {
            return;
        }
        app.sign_up("narrowed@example.com", PASSWORD).await;
        assert_eq!(mode_of(dir), dir_mode, "{}", dir.display());
        for file in ["layer-idp.db", "layer-idp.db-wal", "layer-idp.db-shm"] {
            assert_eq!(mode_of(&dir.join(file)), 0o600, "{file}");
        }
    }
}
