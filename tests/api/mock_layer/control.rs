//! The `/_mock/` test controls.

use reqwest::Method;
use serde_json::{Value, json};

use super::helpers::*;

#[tokio::test]
async fn the_journal_records_requests_without_any_token_or_content_secret() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let _ws = emulator.ws(&alice).await;
    emulator.get("/conversations?page_size=5", &alice).await;
    // Rich content: the upload and download URLs are bearer secrets.
    let content = emulator.upload_content(&alice, b"abc".to_vec()).await;
    let upload = content["upload_url"].as_str().unwrap().to_owned();
    let download = emulator.download_url(&alice, &content).await;
    let refresh_path = content["id"].as_str().unwrap()["layer://".len()..].to_owned();
    assert_eq!(
        emulator.http.get(&download).send().await.unwrap().status(),
        200
    );
    // Logout names the session token in the path.
    let logout = emulator
        .send(Method::DELETE, &format!("/sessions/{alice}"), &alice, None)
        .await;
    assert_eq!(logout.status(), 204);

    let text = emulator.control("requests").await;
    assert!(
        !text.contains(&alice),
        "a session token leaked into the journal: {text}"
    );
    assert!(
        !text.contains("eyJ"),
        "an identity token leaked into the journal"
    );
    for url in [&upload, &download] {
        let secret = url.rsplit('/').next().unwrap();
        assert!(!text.contains(secret), "a content secret leaked: {text}");
    }
    let entries: Vec<Value> = serde_json::from_str(&text).unwrap();
    let paths: Vec<&str> = entries
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/nonces",
            "/sessions",
            "/websocket/",
            "/conversations",
            "/content",
            "/content-upload/[redacted]",
            &refresh_path,
            "/content-download/[redacted]",
            "/sessions/[redacted]",
        ],
        "newest last"
    );
    assert_eq!(
        entries[2]["query"],
        "session_token=%5Bredacted%5D&client-id=test"
    );
    assert_eq!(entries[3]["user_id"], "alice");
    assert_eq!(entries[3]["status"], 200);
    assert_eq!(entries[8]["method"], "DELETE");
    assert_eq!(entries[8]["status"], 204);
}

#[tokio::test]
async fn notifications_list_the_pushes_that_would_have_gone_out() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let c = emulator.conversation(&alice, &["bob", "carol"]).await;
    emulator
        .post(
            &format!("{}/messages", path_of(&c)),
            &alice,
            json!({
                "parts": [{"mime_type": "text/plain", "body": "hi"}],
                "notification": {"title": "Alice", "text": "hi", "sound": "chime.aiff"},
            }),
        )
        .await;
    emulator.message(&alice, &c, "no push").await;
    let pushes = emulator.notifications().await;
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0]["title"], "Alice");
    assert_eq!(pushes[0]["sound"], "chime.aiff");
    assert_eq!(
        pushes[0]["recipients"],
        json!(["layer:///identities/bob", "layer:///identities/carol"])
    );
}

#[tokio::test]
async fn reset_empties_the_world() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let c = emulator.conversation(&alice, &["bob"]).await;
    let reset = emulator
        .http
        .post(format!("{}/_mock/reset", emulator.url))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 204);
    assert_eq!(
        emulator.get(&path_of(&c), &alice).await.status(),
        401,
        "sessions are gone too"
    );
    let alice = emulator.login("alice").await;
    assert_eq!(emulator.get(&path_of(&c), &alice).await.status(), 404);
}

#[tokio::test]
async fn expire_sessions_closes_sockets_and_forces_a_new_challenge() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let mut alice_ws = emulator.ws(&alice).await;
    let mut bob_ws = emulator.ws(&bob).await;
    let response = emulator
        .http
        .post(format!(
            "{}/_mock/users/alice/expire-sessions",
            emulator.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"sessions_ended": 1, "sockets_closed": 1})
    );
    assert!(alice_ws.closed_with().await.is_some());
    let validate = emulator
        .get(
            "/?action=validateConnectionForWebsocket&client=3.4.18",
            &alice,
        )
        .await;
    assert_eq!(validate.status(), 401);
    assert!(validate.json::<Value>().await.unwrap()["data"]["nonce"].is_string());
    // Bob is untouched.
    let (pong, _) = bob_ws
        .request("Presence.subscribe", None, Value::Null)
        .await;
    assert_eq!(pong["body"]["success"], true);
}

#[tokio::test]
async fn disconnect_drops_sockets_but_keeps_the_session() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let mut ws = emulator.ws(&alice).await;
    emulator
        .http
        .post(format!("{}/_mock/users/alice/disconnect", emulator.url))
        .send()
        .await
        .unwrap();
    assert!(ws.closed_with().await.is_some());
    let validate = emulator
        .get(
            "/?action=validateConnectionForWebsocket&client=3.4.18",
            &alice,
        )
        .await;
    assert_eq!(validate.status(), 200);
    let mut again = emulator.ws(&alice).await;
    let (first, _) = again.request("Presence.subscribe", None, Value::Null).await;
    assert_eq!(first["counter"], 0);
}

#[tokio::test]
async fn what_the_logs_keep_of_a_request_is_bounded_by_the_emulator_not_the_client() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let c = emulator.conversation(&alice, &["bob"]).await;
    let mut ws = emulator.ws(&alice).await;
    // A method name nearly a frame long: answered, and journaled as a name the emulator knows.
    let long = "x".repeat(200 * 1024);
    let (refused, _) = ws.request(&long, None, json!({})).await;
    assert_eq!(refused["body"]["success"], false);
    let (known, _) = ws.request("Counter.read", None, json!({})).await;
    assert_eq!(known["body"]["success"], true);
    let journal = emulator.control("requests").await;
    assert!(journal.len() < 4096, "{} bytes", journal.len());
    let entries: Vec<Value> = serde_json::from_str(&journal).unwrap();
    let methods: Vec<&str> = entries
        .iter()
        .filter(|e| e["transport"] == "websocket")
        .map(|e| e["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["(unknown)", "Counter.read"]);
    // A push keeps its title, text and sound, each bounded; nothing else a client adds.
    let messages = format!("{}/messages", path_of(&c));
    let send = |notification: Value| {
        emulator.post(
            &messages,
            &alice,
            json!({"parts": [{"mime_type": "text/plain", "body": "hi"}], "notification": notification}),
        )
    };
    let sent = send(json!({"title": "T", "text": "hi", "sound": "s.aiff", "extra": long})).await;
    assert_eq!(sent.status(), 201);
    let message: Value = sent.json().await.unwrap();
    let kept = json!({"title": "T", "text": "hi", "sound": "s.aiff"});
    assert_eq!(message["notification"], kept);
    let too_long = send(json!({"text": "x".repeat(2049)})).await;
    assert_eq!(too_long.status(), 422);
    let body: Value = too_long.json().await.unwrap();
    assert_eq!(body["data"]["property"], "notification");
    let pushes = emulator.notifications().await;
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0]["notification"], kept);
}
