//! The store's contract, on whichever database the suite runs against (SQLite by default,
//! PostgreSQL with TEST_DATABASE_URL): the same answers from both.

use layer_idp::domain::{Email, Profile, UserId};
use layer_idp::store::{NewSession, NewUser, NonceClaim, NonceRecord, StoreError};

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_batch_of_nonce_claims_gives_each_nonce_to_its_first_claimant_only() {
    let app = spawn_app().await;
    let store = &app.store;
    // Far in the future: the app's own purge task must not remove these while the test runs.
    let expires_at = layer_idp::clock::unix_now() + 3_600;
    let claim = |hash: &'static [u8], user: &'static str| NonceClaim {
        nonce_hash: hash,
        user_id: user,
        expires_at,
        login: None,
    };
    let first = store
        .record_signed_nonces(&[claim(b"n1", "alice")])
        .await
        .unwrap();
    assert_eq!(first, [NonceRecord::Fresh]);

    let batch = [
        claim(b"n2", "bob"),
        claim(b"n1", "bob"),
        claim(b"n2", "carol"),
        claim(b"n3", "carol"),
    ];
    let records = store.record_signed_nonces(&batch).await.unwrap();
    assert_eq!(
        records,
        [
            NonceRecord::Fresh,
            NonceRecord::AlreadySigned {
                user_id: "alice".to_owned()
            },
            NonceRecord::AlreadySigned {
                user_id: "bob".to_owned()
            },
            NonceRecord::Fresh,
        ]
    );
    // Expired records are purged; then the nonce is unknown again.
    assert_eq!(
        store.purge_expired(expires_at - 1).await.unwrap(),
        0,
        "not expired yet"
    );
    assert!(store.purge_expired(expires_at).await.unwrap() >= 3);
    let again = store
        .record_signed_nonces(&[claim(b"n1", "dave")])
        .await
        .unwrap();
    assert_eq!(again, [NonceRecord::Fresh]);
    assert!(store.record_signed_nonces(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn user_ids_and_case_folded_emails_are_unique_and_told_apart() {
    let app = spawn_app().await;
    let store = &app.store;
    let profile = Profile::default();
    let id = UserId::parse("u-1").unwrap();
    let email = Email::parse("Mixed@Example.com").unwrap();
    let new = |id, email| NewUser {
        id,
        email,
        password_hash: "x",
        profile: &profile,
        now: 1,
    };
    assert!(store.create_user(new(&id, &email)).await.unwrap().is_some());
    // Same ID: no row, no error.
    let other_email = Email::parse("other@example.com").unwrap();
    assert!(
        store
            .create_user(new(&id, &other_email))
            .await
            .unwrap()
            .is_none()
    );
    // Same e-mail in another case: a conflict.
    let other_id = UserId::parse("u-2").unwrap();
    let shouted = Email::parse("MIXED@example.COM").unwrap();
    assert!(matches!(
        store.create_user(new(&other_id, &shouted)).await,
        Err(StoreError::Conflict)
    ));
    let login = store
        .find_login(&Email::parse("mixed@example.com").unwrap())
        .await
        .unwrap();
    assert_eq!(login.unwrap().user.id, "u-1");
}

#[tokio::test]
async fn sessions_end_at_their_expiry_and_with_their_disabled_user() {
    let app = spawn_app().await;
    let store = &app.store;
    let profile = Profile::default();
    let id = UserId::parse("s-1").unwrap();
    let email = Email::parse("s@example.com").unwrap();
    store
        .create_user(NewUser {
            id: &id,
            email: &email,
            password_hash: "x",
            profile: &profile,
            now: 1,
        })
        .await
        .unwrap();
    // Real times: the app's purge task runs beside the test.
    let now = layer_idp::clock::unix_now();
    store
        .create_session(NewSession {
            token_hash: b"t",
            user_id: "s-1",
            now,
            expires_at: now + 600,
            login: None,
        })
        .await
        .unwrap();
    assert!(
        store
            .find_session_user(b"t", now + 599)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .find_session_user(b"t", now + 600)
            .await
            .unwrap()
            .is_none()
    );
    store.set_disabled("s-1", true, now).await.unwrap();
    assert!(store.find_session_user(b"t", now).await.unwrap().is_none());
    assert!(
        !store.delete_session(b"t").await.unwrap(),
        "disabling ended the session"
    );
}

#[tokio::test]
async fn an_admin_token_use_is_noted_once_a_minute_and_an_unknown_one_not_at_all() {
    let app = spawn_app().await;
    let store = &app.store;
    let last_used = || async { store.list_admin_tokens().await.unwrap()[0].last_used_at };
    store
        .create_admin_token("ops", b"ops-hash", 1_000)
        .await
        .unwrap();
    assert_eq!(last_used().await, None);

    assert!(
        store
            .use_admin_token(b"unknown", 1_005)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(last_used().await, None);

    let used = store.use_admin_token(b"ops-hash", 1_010).await.unwrap();
    assert_eq!(
        used.map(|t| (t.name, t.last_used_at)),
        Some(("ops".to_owned(), Some(1_010)))
    );
    // Within the minute: not rewritten.
    let used = store.use_admin_token(b"ops-hash", 1_069).await.unwrap();
    assert_eq!(used.unwrap().last_used_at, Some(1_010));
    assert_eq!(last_used().await, Some(1_010));
    // A minute on: rewritten.
    let used = store.use_admin_token(b"ops-hash", 1_070).await.unwrap();
    assert_eq!(used.unwrap().last_used_at, Some(1_070));
    assert_eq!(last_used().await, Some(1_070));
}

/// Runs one statement on the suite's database, beside the application's pools.
async fn execute(app: &crate::helpers::TestApp, sql: &'static str, binds: &[&str]) {
    use sqlx::Connection;
    let url = app.settings.effective_database_url();
    let url = url.expose();
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        query.execute(&mut conn).await.unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        query.execute(&mut conn).await.unwrap();
    }
}

#[tokio::test]
async fn e_mail_keys_stored_under_the_earlier_rule_are_recomputed_at_migration() {
    let app = spawn_app().await;
    let store = &app.store;
    let profile = Profile::default();
    let new = |id, email| NewUser {
        id,
        email,
        password_hash: "x",
        profile: &profile,
        now: 1,
    };
    // `J` + combining caron has no precomposed capital; lower-cased it is `j` + caron, which
    // composes to `ǰ`. The earlier rule stored the uncomposed pair as the key.
    let john = Email::parse("J\u{30C}ohn@example.com").unwrap();
    let john_id = UserId::parse("u-john").unwrap();
    store.create_user(new(&john_id, &john)).await.unwrap();
    let jane = Email::parse("J\u{30C}ane@example.com").unwrap();
    let jane_id = UserId::parse("u-jane").unwrap();
    store.create_user(new(&jane_id, &jane)).await.unwrap();
    let old_key = |local: &str| format!("j\u{30C}{local}@example.com");
    for (id, local) in [("u-john", "ohn"), ("u-jane", "ane")] {
        execute(
            &app,
            "UPDATE users SET email_key = $1 WHERE id = $2",
            &[&old_key(local), id],
        )
        .await;
    }
    // The bug let a second account in under the composed spelling of jane's address.
    let composed = Email::parse("\u{1F0}ane@example.com").unwrap();
    assert_eq!(composed.key(), jane.key());
    execute(
        &app,
        "INSERT INTO users (id, email, email_key, password_hash, created_at, updated_at) \
         VALUES ('u-jane-2', $1, $1, 'x', 1, 1)",
        &[composed.key()],
    )
    .await;
    let find = |email: &str| {
        let email = Email::parse(email).unwrap();
        async move { store.find_login(&email).await.unwrap().map(|l| l.user.id) }
    };
    assert_eq!(find("\u{1F0}ohn@example.com").await, None, "stranded");

    store.migrate().await.unwrap();
    assert_eq!(
        find("\u{1F0}ohn@example.com").await.as_deref(),
        Some("u-john")
    );
    assert_eq!(
        find("J\u{30C}OHN@example.com").await.as_deref(),
        Some("u-john")
    );
    // Two accounts for one address: the holder of the key keeps it; nothing is deleted.
    assert_eq!(
        find("J\u{30C}ane@example.com").await.as_deref(),
        Some("u-jane-2")
    );
    assert!(store.find_login_by_id("u-jane").await.unwrap().is_some());
    // Running it again changes nothing.
    store.migrate().await.unwrap();
    assert_eq!(
        find("\u{1F0}ohn@example.com").await.as_deref(),
        Some("u-john")
    );
}

#[tokio::test]
async fn a_batch_of_session_lookups_answers_each_live_session_once() {
    let app = spawn_app().await;
    let store = &app.store;
    let profile = Profile::default();
    for (id, email) in [("b-1", "b1@example.com"), ("b-2", "b2@example.com")] {
        store
            .create_user(NewUser {
                id: &UserId::parse(id).unwrap(),
                email: &Email::parse(email).unwrap(),
                password_hash: "x",
                profile: &profile,
                now: 1,
            })
            .await
            .unwrap();
    }
    // Real times: the app's purge task runs beside the test.
    let now = layer_idp::clock::unix_now();
    for (hash, user, ttl) in [
        (&b"live-1"[..], "b-1", 600),
        (b"live-2", "b-2", 600),
        (b"short", "b-1", 10),
    ] {
        store
            .create_session(NewSession {
                token_hash: hash,
                user_id: user,
                now,
                expires_at: now + ttl,
                login: None,
            })
            .await
            .unwrap();
    }
    let mut found = store
        .find_session_users(
            &[b"live-1", b"unknown", b"live-2", b"live-1", b"short"],
            now + 10,
        )
        .await
        .unwrap();
    found.sort_by(|a, b| a.token_hash.cmp(&b.token_hash));
    let owners: Vec<(&[u8], &str, i64)> = found
        .iter()
        .map(|o| (&o.token_hash[..], o.user.id.as_str(), o.expires_at - now))
        .collect();
    // "short" expired at now + 10; a hash asked twice is answered once.
    assert_eq!(
        owners,
        [(&b"live-1"[..], "b-1", 600), (b"live-2", "b-2", 600)]
    );

    store.set_disabled("b-2", true, now).await.unwrap();
    let found = store
        .find_session_users(&[b"live-1", b"live-2"], now)
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "a disabled user's session is not found");
    assert_eq!(found[0].user.id, "b-1");
    assert!(store.find_session_users(&[], now).await.unwrap().is_empty());
}

/// A PostgreSQL connection costs a backend process and a TLS handshake (about 90 ms on a busy
/// host), which every request queued on the pool would wait for: the pool opens its minimum
/// before the app serves, and keeps it.
#[tokio::test]
async fn the_postgresql_pool_opens_its_minimum_before_the_first_request() {
    if !std::env::var("TEST_DATABASE_URL").is_ok_and(|url| url.starts_with("postgres")) {
        eprintln!("skipped: needs TEST_DATABASE_URL=postgres://…");
        return;
    }
    let app = spawn_app().await;
    let pools = app.store.pool_use();
    let shared = pools
        .iter()
        .find(|p| p.name == "shared")
        .expect("PostgreSQL has one shared pool");
    assert!(shared.size >= 4, "{} connections open", shared.size);
    assert_eq!(shared.max, 10);
}
