//! Saving and loading the world: `GET /_mock/export`, `POST /_mock/import` and
//! `mock_layer.import` at start, over real HTTP.

use reqwest::Method;
use serde_json::{Value, json};

use layer_idp::mock_layer::{self, LocalProvider, settings::MockLayerSettings};

use super::helpers::{
    Emulator, KID, PRODUCTION, PROVIDER, STAGING, app_id, keys, path_of, spawn_emulator,
    spawn_with, trusted,
};
use super::platform::{APP_UUID, Server, assert_error, uuid_of};

const CONTENT: &[u8] = b"\x00\x01rich content bytes\xff";

async fn export(emulator: &Emulator, app: &str) -> (u16, Value) {
    let response = emulator
        .http
        .get(format!("{}/_mock/export?app_id={app}", emulator.url))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn import(emulator: &Emulator, app: Option<&str>, body: String) -> (u16, Value) {
    let query = app.map(|app| format!("?app_id={app}")).unwrap_or_default();
    let response = emulator
        .http
        .post(format!("{}/_mock/import{query}", emulator.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A world with something of everything, built through the Client and Platform APIs.
async fn build_world(emulator: &Emulator) {
    let server = Server::of(emulator).await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;

    let carol = json!({"display_name": "Carol", "first_name": "Carol", "last_name": "Doe",
                       "avatar_url": "https://example.com/carol.png",
                       "phone_number": "+15550100", "email_address": "carol@example.com",
                       "metadata": {"team": "blue"}});
    let (status, _) = server
        .call(Method::POST, "/users/carol/identity", Some(carol))
        .await;
    assert_eq!(status, 201);
    let response = emulator
        .send(Method::PUT, "/following/users/carol", &alice, None)
        .await;
    assert_eq!(response.status(), 204);
    let (status, _) = server
        .call(
            Method::POST,
            "/users/alice/blocks",
            Some(json!({"user_id": "mallory"})),
        )
        .await;
    assert_eq!(status, 204);
    let suspend = json!([{"operation": "set", "property": "suspended", "value": true}]);
    let (status, _) = server
        .call(Method::PATCH, "/users/mallory", Some(suspend))
        .await;
    assert_eq!(status, 202);
    let (status, _) = server
        .call(
            Method::PUT,
            "/users/bob/badge",
            Some(json!({"external_unread_count": 13})),
        )
        .await;
    assert_eq!(status, 204);

    let conversation = emulator.conversation(&alice, &["bob", "carol"]).await;
    let first = emulator.message(&alice, &conversation, "hello").await;
    emulator.message(&bob, &conversation, "hi alice").await;
    let response = emulator
        .post(
            &format!("{}/receipts", path_of(&first)),
            &bob,
            json!({"type": "read"}),
        )
        .await;
    assert_eq!(response.status(), 204);

    let content: Value = emulator
        .reserve_content(&alice, CONTENT.len())
        .await
        .json()
        .await
        .unwrap();
    let put = emulator
        .http
        .put(content["upload_url"].as_str().unwrap())
        .body(CONTENT.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let response = emulator
        .post(
            &format!("{}/messages", path_of(&conversation)),
            &alice,
            json!({"parts": [{"mime_type": "application/octet-stream",
                              "content": {"id": content["id"], "size": CONTENT.len()}}]}),
        )
        .await;
    assert_eq!(response.status(), 201);

    let (status, sent) = server
        .send(&conversation, json!({"name": "The System"}), "maintenance")
        .await;
    assert_eq!(status, 201, "{sent}");
    let other = server.conversation(&["alice", "dave"]).await;
    let (status, _) = server
        .send(&other, json!({"user_id": "dave"}), "to be hidden")
        .await;
    assert_eq!(status, 201);
    let response = emulator
        .send(
            Method::DELETE,
            &format!(
                "/conversations/{}?mode=my_devices&leave=false",
                uuid_of(&other)
            ),
            &alice,
            None,
        )
        .await;
    assert_eq!(response.status(), 204);

    let body = json!({"recipients": ["alice", "bob"], "sender": {"name": "The System"},
                      "parts": [{"mime_type": "text/plain", "body": "tonight"}],
                      "notification": {"text": "maintenance"}});
    let (status, _) = server
        .json(Method::POST, "/announcements", Some(body))
        .await;
    assert_eq!(status, 202);

    let webhook = json!({"version": "3.0", "target_url": "http://127.0.0.1:9/hook",
                         "events": ["Message.created"], "secret": "fixture secret",
                         "config": {"team": "backend"}});
    let response = emulator
        .http
        .post(format!("{}/apps/{APP_UUID}/webhooks", emulator.url))
        .header("authorization", format!("Bearer {}", server.token))
        .header("accept", "application/vnd.layer.webhooks+json; version=3.0")
        .header("content-type", "application/json")
        .body(webhook.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let ttl = json!([{"operation": "set", "property": "session_ttl_in_seconds", "value": 3600}]);
    let (status, text) = server.call(Method::PATCH, "", Some(ttl)).await;
    assert!((200..300).contains(&status), "{status} {text}");
}

/// A Client API answer with the emulator's base URL made neutral and the parts that move
/// with the wall clock left out.
fn neutral(emulator: &Emulator, mut value: Value) -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("download_url_expires_at");
                map.remove("expiration");
                map.remove("presence");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut value);
    let text = value.to_string().replace(&emulator.url, "BASE");
    serde_json::from_str(&text).unwrap()
}

/// What alice sees through the Client API: her conversations, their messages, identities.
async fn alice_sees(emulator: &Emulator) -> Value {
    let alice = emulator.login("alice").await;
    let get = |path: String| {
        let alice = alice.clone();
        async move {
            let response = emulator.get(&path, &alice).await;
            assert_eq!(response.status(), 200, "{path}");
            response.json::<Value>().await.unwrap()
        }
    };
    let conversations = get("/conversations".to_owned()).await;
    let mut messages = Vec::new();
    for c in conversations.as_array().unwrap() {
        messages.push(get(format!("{}/messages", path_of(c))).await);
    }
    let carol = get("/identities/carol".to_owned()).await;
    let following = get("/identities".to_owned()).await;
    let announcements = get("/announcements".to_owned()).await;
    neutral(
        emulator,
        json!({"conversations": conversations, "messages": messages, "carol": carol,
               "following": following, "announcements": announcements}),
    )
}

#[tokio::test]
async fn a_world_survives_export_and_import_with_every_id() {
    let first = spawn_emulator().await;
    build_world(&first).await;
    let (status, doc) = export(&first, STAGING).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["format"], "layer-idp/mock-layer-world");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["app_id"], STAGING);
    assert_eq!(doc["session_ttl_secs"], 3600);
    assert_eq!(doc["messages"].as_array().unwrap().len(), 5);
    assert_eq!(doc["content"].as_array().unwrap().len(), 1);
    assert_eq!(doc["webhooks"][0]["secret"], "fixture secret");
    let carol = doc["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["user_id"] == "carol")
        .unwrap();
    assert_eq!(carol["email_address"], "carol@example.com");
    assert_eq!(carol["metadata"], json!({"team": "blue"}));
    let before = alice_sees(&first).await;
    assert_eq!(before["conversations"].as_array().unwrap().len(), 1);
    let hello = before["messages"][0]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["parts"][0]["body"] == "hello")
        .unwrap();
    assert_eq!(hello["recipient_status"]["layer:///identities/bob"], "read");

    let second = spawn_emulator().await;
    let (status, body) = import(&second, None, doc.to_string()).await;
    assert_eq!(status, 204, "{body}");
    let (status, again) = export(&second, STAGING).await;
    assert_eq!(status, 200);
    assert_eq!(again, doc, "a second export equals the document imported");

    let after = alice_sees(&second).await;
    assert_eq!(
        after,
        neutral(&second, serde_json::from_str(&before.to_string()).unwrap()),
        "alice sees the same world"
    );
    let hidden = after["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| !c["participants"].to_string().contains("dave"));
    assert!(
        hidden,
        "the conversation alice deleted for her devices stays hidden"
    );

    // The rich content downloads from the new emulator, with the same bytes.
    let alice = second.login("alice").await;
    let messages = &after["messages"][0];
    let with_content = messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["parts"][0]["content"].is_object())
        .expect("the rich content message");
    let url = with_content["parts"][0]["content"]["download_url"]
        .as_str()
        .unwrap()
        .replace("BASE", &second.url);
    let bytes = second.http.get(url).send().await.unwrap();
    assert_eq!(bytes.status(), 200);
    assert_eq!(bytes.bytes().await.unwrap().as_ref(), CONTENT);

    // Platform API state came along: blocks, suspension, badge, the webhook.
    let server = Server::of(&second).await;
    let (_, blocks) = server.json(Method::GET, "/users/alice/blocks", None).await;
    assert_eq!(blocks, json!([{"user_id": "mallory"}]));
    let (_, mallory) = server.json(Method::GET, "/users/mallory", None).await;
    assert_eq!(mallory["suspended"], true, "{mallory}");
    let (_, badge) = server.json(Method::GET, "/users/bob/badge", None).await;
    assert_eq!(badge["external_unread_count"], 13, "{badge}");

    // New objects sort after the imported ones and take the next position.
    let conversation = &after["conversations"].as_array().unwrap()[0];
    let conversation: Value =
        serde_json::from_str(&conversation.to_string().replace("BASE", &second.url)).unwrap();
    let sent = second.message(&alice, &conversation, "after import").await;
    let last = doc["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["conversation"] == conversation["id"])
        .map(|m| m["position"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(sent["position"].as_u64().unwrap() > last);
}

#[tokio::test]
async fn export_needs_an_app_when_several_are_served() {
    let emulator = spawn_emulator().await;
    let response = emulator
        .http
        .get(format!("{}/_mock/export", emulator.url))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_error(status, &body, 400, "invalid_request", 10);
    assert!(body["message"].as_str().unwrap().contains("app_id"));
    let (status, doc) = export(&emulator, PRODUCTION).await;
    assert_eq!(status, 200);
    assert_eq!(doc["app_id"], PRODUCTION);
    assert_eq!(doc["identities"], json!([]));
}

#[tokio::test]
async fn import_ends_the_app_s_sessions() {
    let emulator = spawn_emulator().await;
    build_world(&emulator).await;
    let (_, doc) = export(&emulator, STAGING).await;
    let alice = emulator.login("alice").await;
    let other = emulator.login_to("alice", PRODUCTION).await;
    let mut ws = emulator.ws(&alice).await;
    assert_eq!(emulator.get("/conversations", &alice).await.status(), 200);
    let (status, _) = import(&emulator, Some(STAGING), doc.to_string()).await;
    assert_eq!(status, 204);
    assert!(ws.closed_with().await.is_some(), "the app's sockets close");
    assert_eq!(emulator.get("/conversations", &alice).await.status(), 401);
    assert_eq!(
        emulator.get("/conversations", &other).await.status(),
        200,
        "another app's sessions go on"
    );
}

#[tokio::test]
async fn bad_documents_are_refused_and_change_nothing() {
    let emulator = spawn_emulator().await;
    build_world(&emulator).await;
    let (_, doc) = export(&emulator, STAGING).await;

    let mut cases: Vec<(&str, String)> = vec![
        ("not JSON", "{".to_owned()),
        ("not a document", json!({"hello": 1}).to_string()),
    ];
    let mut edit = |what: &'static str, change: &dyn Fn(&mut Value)| {
        let mut bad = doc.clone();
        change(&mut bad);
        cases.push((what, bad.to_string()));
    };
    edit("another version", &|d| d["version"] = json!(99));
    edit("another format", &|d| d["format"] = json!("something else"));
    edit("an unknown field", &|d| d["extra"] = json!(true));
    edit("a message in no conversation", &|d| {
        d["messages"][0]["conversation"] =
            json!("layer:///conversations/99999999-9999-4999-8999-999999999999")
    });
    edit("a participant with no identity", &|d| {
        d["conversations"][0]["participants"][0] = json!("nobody")
    });
    edit("a follow of nobody", &|d| {
        for i in d["identities"].as_array_mut().unwrap() {
            i["following"] = json!(["nobody"]);
        }
    });
    edit("content no part uses", &|d| {
        for m in d["messages"].as_array_mut().unwrap() {
            for p in m["parts"].as_array_mut().unwrap() {
                p["content"] = Value::Null;
            }
        }
    });
    edit("a part naming missing content", &|d| {
        d["content"] = json!([])
    });
    edit("content that is not base64", &|d| {
        d["content"][0]["bytes"] = json!("***")
    });
    edit("a duplicate message", &|d| {
        let first = d["messages"][0].clone();
        d["messages"].as_array_mut().unwrap().push(first);
    });
    edit("a sequence past last_seq", &|d| d["last_seq"] = json!(1));
    edit("an unknown status", &|d| {
        let m = &mut d["messages"][0]["recipient_status"];
        let user = m.as_object().unwrap().keys().next().unwrap().clone();
        m[user] = json!("seen");
    });
    edit("another app", &|d| d["app_id"] = json!(PRODUCTION));

    // Change the live world first, so "nothing changed" is tested against a real state.
    let server = Server::of(&emulator).await;
    server.conversation(&["erin"]).await;
    let (_, current) = export(&emulator, STAGING).await;
    assert_ne!(current, doc);
    for (what, body) in cases {
        let (status, error) = import(&emulator, Some(STAGING), body).await;
        assert!(
            [400, 403, 422].contains(&status),
            "{what}: {status} {error}"
        );
        assert!(
            error["id"].is_string() && error["message"].is_string(),
            "{what}: {error}"
        );
        let (_, now) = export(&emulator, STAGING).await;
        assert_eq!(now, current, "{what} changed nothing");
    }
}

#[tokio::test]
async fn a_document_over_the_caps_is_refused() {
    let source = spawn_emulator().await;
    build_world(&source).await;
    let (_, doc) = export(&source, STAGING).await;
    let identities = doc["identities"].as_array().unwrap().len();
    let small = spawn_with(|s| s.max_identities = identities - 1).await;
    let (status, error) = import(&small, None, doc.to_string()).await;
    assert_error(status, &error, 400, "invalid_request", 10);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("max_identities")
    );
    let (_, empty) = export(&small, STAGING).await;
    assert_eq!(empty["identities"], json!([]));

    // A block list longer than a user may hold live (identities named in it or not).
    let mut blocking = doc.clone();
    blocking["identities"][0]["blocks"] = (0..1001).map(|i| format!("user-{i}")).collect::<Value>();
    let (status, error) = import(&source, None, blocking.to_string()).await;
    assert_error(status, &error, 400, "invalid_request", 10);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("blocks more than 1000 users"),
        "{error}"
    );
}

#[tokio::test]
async fn the_import_setting_loads_a_world_at_start() {
    let source = spawn_emulator().await;
    build_world(&source).await;
    let (_, doc) = export(&source, STAGING).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("world.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let loaded = spawn_with(|s| s.import = Some(file.clone())).await;
    let (_, again) = export(&loaded, STAGING).await;
    assert_eq!(again, doc);
    let conversations = alice_sees(&loaded).await["conversations"].clone();
    assert_eq!(
        conversations.as_array().unwrap().len(),
        1,
        "{conversations}"
    );
    assert_eq!(
        uuid_of(&conversations[0]),
        uuid_of(
            &doc["conversations"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["participants"].to_string().contains("bob"))
                .unwrap()
                .clone()
        )
    );
}

#[tokio::test]
async fn a_cross_site_page_can_neither_export_nor_import() {
    let emulator = spawn_emulator().await;
    build_world(&emulator).await;
    let (_, doc) = export(&emulator, STAGING).await;
    let exported = emulator
        .http
        .get(format!("{}/_mock/export?app_id={STAGING}", emulator.url))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(exported.status(), 403);
    let mut emptied = doc.clone();
    emptied["messages"] = json!([]);
    emptied["content"] = json!([]);
    let imported = emulator
        .http
        .post(format!("{}/_mock/import", emulator.url))
        .header("origin", "https://evil.example")
        .header("content-type", "application/json")
        .body(emptied.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status(), 403);
    let (_, now) = export(&emulator, STAGING).await;
    assert_eq!(now, doc, "nothing imported");
}

#[tokio::test]
async fn the_emulator_does_not_start_with_a_refused_document() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("world.json");
    std::fs::write(&file, "{\"format\": \"something else\"}").unwrap();
    let settings = MockLayerSettings {
        app_ids: vec![app_id(STAGING)],
        import: Some(file.clone()),
        ..MockLayerSettings::default()
    };
    let local = || LocalProvider {
        provider_id: PROVIDER.to_owned(),
        keys: vec![trusted(KID, &keys().0)],
        apps: Vec::new(),
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let error = match mock_layer::start(&settings, Some(local()), listener, 1).await {
        Ok(_) => panic!("started with a refused document"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("mock_layer.import"), "{error}");
    let missing = MockLayerSettings {
        import: Some(dir.path().join("missing.json")),
        ..settings
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert!(
        mock_layer::start(&missing, None, listener, 1)
            .await
            .is_err()
    );
}
