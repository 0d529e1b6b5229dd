//! The `/_mock/` test controls.

use serde_json::{Value, json};

use super::helpers::*;

#[tokio::test]
async fn the_journal_records_requests_without_any_token() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let _ws = emulator.ws(&alice).await;
    emulator.get("/conversations?page_size=5", &alice).await;
    let response = emulator
        .http
        .get(format!("{}/_mock/requests", emulator.url))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(
        !text.contains(&alice),
        "a session token leaked into the journal"
    );
    assert!(
        !text.contains("eyJ"),
        "an identity token leaked into the journal"
    );
    let entries: Vec<Value> = serde_json::from_str(&text).unwrap();
    let paths: Vec<&str> = entries
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["/nonces", "/sessions", "/websocket/", "/conversations"],
        "newest last"
    );
    assert_eq!(
        entries[2]["query"],
        "session_token=%5Bredacted%5D&client-id=test"
    );
    assert_eq!(entries[3]["user_id"], "alice");
    assert_eq!(entries[3]["status"], 200);
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
    let pushes: Vec<Value> = emulator
        .http
        .get(format!("{}/_mock/notifications", emulator.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
