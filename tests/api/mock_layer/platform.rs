//! The Platform API over real HTTP, and what its calls do to SDK sessions and sockets.

use reqwest::Method;
use serde_json::{Value, json};

use super::helpers::{Emulator, STAGING, Ws, spawn_emulator, spawn_with};

pub(super) const APP_UUID: &str = "11111111-1111-4111-8111-111111111111";
pub(super) const V1: &str = "application/vnd.layer+json; version=1.0";
pub(super) const V2: &str = "application/vnd.layer+json; version=2.0";

/// A Platform API client for the emulator's staging app.
pub(super) struct Server<'a> {
    pub(super) emulator: &'a Emulator,
    pub(super) token: String,
    pub(super) accept: &'static str,
}

impl<'a> Server<'a> {
    pub(super) async fn of(emulator: &'a Emulator) -> Server<'a> {
        let apps: Value = serde_json::from_str(&emulator.control("apps").await).unwrap();
        Server {
            emulator,
            token: apps["platform_tokens"][STAGING]
                .as_str()
                .unwrap()
                .to_owned(),
            accept: V1,
        }
    }

    pub(super) fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.request_as(method, path, self.accept)
    }

    /// A request with another `Accept` (the Webhooks API's, say).
    pub(super) fn request_as(
        &self,
        method: Method,
        path: &str,
        accept: &str,
    ) -> reqwest::RequestBuilder {
        self.emulator
            .http
            .request(
                method,
                format!("{}/apps/{APP_UUID}{path}", self.emulator.url),
            )
            .header("authorization", format!("Bearer {}", self.token))
            .header("accept", accept)
    }

    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        self.call_as(method, path, self.accept, body).await
    }

    /// [`Self::call`] with another `Accept`.
    pub(super) async fn call_as(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut request = self.request_as(method.clone(), path, accept);
        if let Some(body) = body {
            let content_type = if method == Method::PATCH {
                "application/vnd.layer-patch+json"
            } else {
                "application/json"
            };
            request = request
                .header("content-type", content_type)
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    pub(super) async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, text) = self.call(method, path, body).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(super) async fn conversation(&self, participants: &[&str]) -> Value {
        let (status, body) = self
            .json(
                Method::POST,
                "/conversations",
                Some(json!({"participants": participants})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub(super) async fn send(
        &self,
        conversation: &Value,
        sender: Value,
        text: &str,
    ) -> (u16, Value) {
        let path = format!("/conversations/{}/messages", uuid_of(conversation));
        let body = json!({"sender": sender, "parts": [{"mime_type": "text/plain", "body": text}]});
        self.json(Method::POST, &path, Some(body)).await
    }
}

pub(super) fn uuid_of(object: &Value) -> String {
    object["id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

/// The next change packet of this kind on the socket, skipping others (presence, etc.);
/// panics after five seconds without one.
pub(super) async fn next_change(ws: &mut Ws, operation: &str, kind: &str) -> Value {
    loop {
        let packet = ws.recv().await;
        let body = &packet["body"];
        if packet["type"] == "change"
            && body["operation"] == operation
            && body["object"]["type"] == kind
        {
            return body.clone();
        }
    }
}

pub(super) fn assert_error(status: u16, body: &Value, want_status: u16, id: &str, code: u64) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["id"], id, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(
        body["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://"))
    );
}

#[tokio::test]
async fn requests_need_a_served_app_the_app_s_token_and_a_layer_accept_header() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let url = |app: &str| format!("{}/apps/{app}/conversations", emulator.url);
    let body = json!({"participants": ["a"]}).to_string();

    let unknown = emulator
        .http
        .post(url("99999999-9999-4999-8999-999999999999"))
        .header("authorization", format!("Bearer {}", server.token))
        .header("accept", V1)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let status = unknown.status().as_u16();
    assert_error(
        status,
        &unknown.json().await.unwrap(),
        404,
        "not_found",
        102,
    );

    for authorization in [
        None,
        Some("Bearer wrong"),
        Some("Layer session-token=\"x\""),
    ] {
        let mut request = emulator
            .http
            .post(url(APP_UUID))
            .header("accept", V1)
            .body(body.clone());
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_error(status, &body, 401, "authentication_required", 4);
        assert_eq!(body["data"], Value::Null, "no nonce: there is no challenge");
    }

    for accept in [
        None,
        Some("application/json"),
        Some("application/vnd.layer+json"),
        Some("application/vnd.layer+json; version=4.0"),
    ] {
        let mut request = emulator
            .http
            .post(url(APP_UUID))
            .header("authorization", format!("Bearer {}", server.token))
            .body(body.clone());
        if let Some(value) = accept {
            request = request.header("accept", value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_error(status, &body, 406, "invalid_header", 107);
        assert_eq!(body["data"]["header"], "Accept");
    }

    // None of the refused requests made anything; a good one does, in every version.
    for version in ["1.0", "1.1", "2.0", "3.0"] {
        let response = emulator
            .http
            .post(url(APP_UUID))
            .header("authorization", format!("Bearer {}", server.token))
            .header(
                "accept",
                format!("application/vnd.layer+json; version={version}"),
            )
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "version {version}");
    }
    let session = emulator.login("a").await;
    let list: Vec<Value> = emulator
        .get("/conversations", &session)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 4);
}

#[tokio::test]
async fn each_app_has_its_own_token_and_a_configured_one_is_used_as_given() {
    let emulator = spawn_emulator().await;
    let apps: Value = serde_json::from_str(&emulator.control("apps").await).unwrap();
    let staging = apps["platform_tokens"][STAGING].as_str().unwrap();
    let production = apps["platform_tokens"][super::helpers::PRODUCTION]
        .as_str()
        .unwrap();
    assert_ne!(staging, production);
    assert!(staging.len() >= 24);
    assert_eq!(apps["platform_token"], staging, "the first app's token");
    // The production token does not open the staging app.
    let response = emulator
        .http
        .get(format!("{}/apps/{APP_UUID}/users/x/blocks", emulator.url))
        .header("authorization", format!("Bearer {production}"))
        .header("accept", V1)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let configured = spawn_with(|s| {
        s.platform_token = Some(layer_idp::mock_layer::settings::PlatformToken(
            "backend-secret".to_owned(),
        ));
    })
    .await;
    let apps: Value = serde_json::from_str(&configured.control("apps").await).unwrap();
    assert_eq!(apps["platform_token"], "backend-secret");
    let server = Server::of(&configured).await;
    assert_eq!(server.token, "backend-secret");
    server.conversation(&["a"]).await;
}

#[tokio::test]
async fn conversations_are_created_read_patched_and_deleted_and_sdk_sockets_see_it() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let alice = emulator.login("alice").await;
    let mut alice_ws = emulator.ws(&alice).await;

    let (status, error) = server
        .json(Method::POST, "/conversations", Some(json!({})))
        .await;
    assert_error(status, &error, 422, "missing_property", 104);
    assert_eq!(error["data"]["property"], "participants");

    let created = server.conversation(&["bob", "alice", "carol"]).await;
    // 1.x: user IDs, in the order given; nobody added (there is no calling user).
    assert_eq!(created["participants"], json!(["bob", "alice", "carol"]));
    assert_eq!(created["distinct"], false);
    assert!(created["url"].as_str().unwrap().ends_with(&format!(
        "/apps/{APP_UUID}/conversations/{}",
        uuid_of(&created)
    )));
    // Alice's SDK socket is told, with her Client API view.
    let create = next_change(&mut alice_ws, "create", "Conversation").await;
    assert_eq!(create["object"]["id"], created["id"]);
    assert_eq!(
        create["data"]["participants"][0]["id"],
        "layer:///identities/bob"
    );

    let path = format!("/conversations/{}", uuid_of(&created));
    let (status, got) = server.json(Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(got["participants"], created["participants"]);

    // 2.0 shows identities.
    let v2 = Server {
        accept: V2,
        ..Server::of(&emulator).await
    };
    let (_, got) = v2.json(Method::GET, &path, None).await;
    assert_eq!(got["participants"][1]["id"], "layer:///identities/alice");
    assert_eq!(got["participants"][1]["user_id"], "alice");

    let patch = json!([
        {"operation": "add", "property": "participants", "value": "dave"},
        {"operation": "remove", "property": "participants", "value": "carol"},
        {"operation": "set", "property": "metadata.stage", "value": "open"},
    ]);
    let (status, text) = server.call(Method::PATCH, &path, Some(patch)).await;
    assert_eq!((status, text.as_str()), (204, ""), "204 with an empty body");
    let update = next_change(&mut alice_ws, "update", "Conversation").await;
    let ops = update["data"].as_array().unwrap();
    assert!(
        ops.iter()
            .any(|op| op["operation"] == "add" && op["id"] == "layer:///identities/dave")
    );
    assert!(ops.iter().any(|op| op["property"] == "metadata.stage"));
    let (_, got) = server.json(Method::GET, &path, None).await;
    assert_eq!(got["participants"], json!(["bob", "alice", "dave"]));
    assert_eq!(got["metadata"], json!({"stage": "open"}));

    // A bad patch changes nothing.
    let bad = json!([
        {"operation": "add", "property": "participants", "value": "erin"},
        {"operation": "set", "property": "metadata.n", "value": 5},
    ]);
    let (status, error) = server.json(Method::PATCH, &path, Some(bad)).await;
    assert_error(status, &error, 422, "invalid_property", 105);
    let (_, got) = server.json(Method::GET, &path, None).await;
    assert_eq!(got["participants"], json!(["bob", "alice", "dave"]));

    let (status, text) = server.call(Method::DELETE, &path, None).await;
    assert_eq!((status, text.as_str()), (204, ""));
    let delete = next_change(&mut alice_ws, "delete", "Conversation").await;
    assert_eq!(delete["data"]["mode"], "all_participants");
    let (status, error) = server.json(Method::GET, &path, None).await;
    assert_error(status, &error, 410, "object_deleted", 103);
    let (status, _) = server.call(Method::DELETE, &path, None).await;
    assert_eq!(status, 204, "deleting again is 204");
    let unknown = "/conversations/00000000-0000-4000-8000-000000000000";
    let (status, error) = server.json(Method::GET, unknown, None).await;
    assert_error(status, &error, 404, "not_found", 102);
}

#[tokio::test]
async fn distinct_creates_match_sdk_made_conversations_and_if_none_match_dedupes() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let alice = emulator.login("alice").await;
    let response = emulator
        .post(
            "/conversations",
            &alice,
            json!({"participants": ["bob"], "distinct": true, "metadata": {"a": "1"}}),
        )
        .await;
    let from_sdk: Value = response.json().await.unwrap();

    let body = json!({"participants": ["bob", "alice"], "distinct": true});
    let response = server
        .request(Method::POST, "/conversations")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let found: Value = response.json().await.unwrap();
    assert_eq!(found["id"], from_sdk["id"]);
    assert_eq!(
        location,
        format!("/apps/{APP_UUID}/conversations/{}", uuid_of(&found))
    );

    let conflicting =
        json!({"participants": ["alice", "bob"], "distinct": true, "metadata": {"a": "2"}});
    let (status, error) = server
        .json(Method::POST, "/conversations", Some(conflicting))
        .await;
    assert_error(status, &error, 409, "conflict", 108);
    assert_eq!(error["data"]["id"], from_sdk["id"]);

    let tag = "5bd4e054-c6ad-49df-8a14-ace1594e8468";
    let body = json!({"participants": ["alice"]}).to_string();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response = server
            .request(Method::POST, "/conversations")
            .header("if-none-match", tag)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        ids.push(response.json::<Value>().await.unwrap()["id"].clone());
    }
    assert_eq!(ids[0], format!("layer:///conversations/{tag}"));
    assert_eq!(ids[0], ids[1], "a repeat returns the first result");
    let list: Vec<Value> = emulator
        .get("/conversations", &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 2, "the repeat made nothing");

    let response = server
        .request(Method::POST, "/conversations")
        .header("if-none-match", "not-a-uuid")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_error(
        status,
        &response.json().await.unwrap(),
        422,
        "invalid_property",
        105,
    );
}

#[tokio::test]
async fn a_message_sent_by_the_server_reaches_every_participant_like_an_sdk_message() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let conversation = server.conversation(&["alice", "bob"]).await;
    let mut alice_ws = emulator.ws(&alice).await;
    let mut bob_ws = emulator.ws(&bob).await;

    let (status, sent) = server
        .send(
            &conversation,
            json!({"user_id": "alice"}),
            "from alice's backend",
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["sender"], json!({"user_id": "alice", "name": null}));
    assert_eq!(sent["parts"][0]["body"], "from alice's backend");
    assert_eq!(
        sent["recipient_status"],
        json!({"alice": "read", "bob": "sent"})
    );
    // Both sockets get the create, the sender's included: no SDK sent it locally.
    for ws in [&mut alice_ws, &mut bob_ws] {
        let create = next_change(ws, "create", "Message").await;
        assert_eq!(create["object"]["id"], sent["id"]);
        assert_eq!(create["data"]["sender"]["user_id"], "alice");
        let update = next_change(ws, "update", "Conversation").await;
        assert_eq!(update["data"][0]["id"], sent["id"]);
    }

    let (status, named) = server
        .send(&conversation, json!({"name": "Admin"}), "system notice")
        .await;
    assert_eq!(status, 201);
    assert_eq!(named["sender"], json!({"user_id": null, "name": "Admin"}));
    assert_eq!(
        named["recipient_status"],
        json!({"alice": "sent", "bob": "sent"})
    );
    let create = next_change(&mut bob_ws, "create", "Message").await;
    assert_eq!(create["data"]["sender"]["display_name"], "Admin");
    assert_eq!(create["data"]["sender"]["id"], Value::Null);
    assert_eq!(create["data"]["is_unread"], true);

    // The SDK's queries see both, newest first; so does the Platform API.
    let path = format!("/conversations/{}/messages", uuid_of(&conversation));
    let listed: Vec<Value> = emulator.get(&path, &bob).await.json().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], named["id"]);
    assert_eq!(listed[1]["sender"]["user_id"], "alice");
    let response = server.request(Method::GET, &path).send().await.unwrap();
    assert_eq!(response.headers()["layer-count"], "2");
    let platform_list: Vec<Value> = response.json().await.unwrap();
    assert_eq!(platform_list[0]["id"], named["id"]);
    assert_eq!(
        platform_list[0]["position"],
        Value::Null,
        "system perspective"
    );

    // User perspective.
    let user_path = format!(
        "/users/bob/conversations/{}/messages",
        uuid_of(&conversation)
    );
    let (status, bobs) = server.json(Method::GET, &user_path, None).await;
    assert_eq!(status, 200);
    assert_eq!(bobs[0]["is_unread"], true);
    let (status, one) = server
        .json(
            Method::GET,
            &format!("/users/bob/messages/{}", uuid_of(&sent)),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(one["id"], sent["id"]);
    let (status, convs) = server
        .json(Method::GET, "/users/bob/conversations", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(convs[0]["last_message"]["id"], named["id"]);
    assert_eq!(convs[0]["unread_message_count"], 2);

    // Delete for everyone: 204, the sockets hear it, then 404.
    let message_path = format!("{path}/{}", uuid_of(&sent));
    let (status, text) = server.call(Method::DELETE, &message_path, None).await;
    assert_eq!((status, text.as_str()), (204, ""));
    let delete = next_change(&mut bob_ws, "delete", "Message").await;
    assert_eq!(delete["object"]["id"], sent["id"]);
    // Then Bob's conversation: the same last message, one unread fewer.
    let update = next_change(&mut bob_ws, "update", "Conversation").await;
    assert_eq!(update["data"][0]["id"], named["id"]);
    assert_eq!(update["data"][1]["value"], 1);
    let (status, error) = server.json(Method::GET, &message_path, None).await;
    assert_error(status, &error, 404, "not_found", 102);
}

#[tokio::test]
async fn message_sends_that_break_a_rule_change_nothing() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let conversation = server.conversation(&["alice", "bob"]).await;
    let path = format!("/conversations/{}/messages", uuid_of(&conversation));
    let part = json!([{"mime_type": "text/plain", "body": "x"}]);
    let cases = [
        (json!({"parts": part}), "missing_property", "sender"),
        (
            json!({"sender": {"user_id": "alice", "name": "A"}, "parts": part}),
            "invalid_property",
            "sender",
        ),
        (
            json!({"sender": {"user_id": "mallory"}, "parts": part}),
            "invalid_property",
            "sender.user_id",
        ),
        (
            json!({"sender": {"name": "A"}}),
            "missing_property",
            "parts",
        ),
        (
            json!({"sender": {"name": "A"}, "parts": [{"mime_type": "text/plain", "body": "x".repeat(2049)}]}),
            "invalid_property",
            "parts",
        ),
    ];
    for (body, id, property) in cases {
        let (status, error) = server.json(Method::POST, &path, Some(body.clone())).await;
        assert_eq!(status, 422, "{body}: {error}");
        assert_eq!(error["id"], id, "{body}");
        assert_eq!(error["data"]["property"], property, "{body}");
    }
    let (status, error) = server
        .json(
            Method::POST,
            "/conversations/00000000-0000-4000-8000-000000000000/messages",
            Some(json!({"sender": {"name": "A"}, "parts": part})),
        )
        .await;
    assert_error(status, &error, 404, "not_found", 102);
    let response = server.request(Method::GET, &path).send().await.unwrap();
    assert_eq!(response.headers()["layer-count"], "0");
    let (status, error) = server.json(Method::POST, &path, None).await;
    assert_eq!(status, 400, "{error}");
}

#[tokio::test]
async fn identities_are_created_read_patched_replaced_and_deleted_and_followers_hear_it() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    // Bob shares a conversation with Alice, so he follows her identity.
    server.conversation(&["alice", "bob"]).await;
    let bob = emulator.login("bob").await;
    let mut bob_ws = emulator.ws(&bob).await;

    let identity = json!({
        "display_name": "Alice A.", "first_name": "Alice", "last_name": "Able",
        "avatar_url": "https://example.invalid/alice.png", "phone_number": "+15550100",
        "email_address": "alice@example.invalid", "metadata": {"level": "1"},
    });
    let (status, text) = server
        .call(
            Method::POST,
            "/users/alice/identity",
            Some(identity.clone()),
        )
        .await;
    assert_eq!((status, text.as_str()), (201, ""), "201 with an empty body");
    let create = next_change(&mut bob_ws, "create", "Identity").await;
    assert_eq!(create["data"]["display_name"], "Alice A.");
    let (status, error) = server
        .json(
            Method::POST,
            "/users/alice/identity",
            Some(identity.clone()),
        )
        .await;
    assert_error(status, &error, 409, "conflict", 108);

    let (status, got) = server
        .json(Method::GET, "/users/alice/identity", None)
        .await;
    assert_eq!(status, 200);
    for (key, value) in identity.as_object().unwrap() {
        assert_eq!(&got[key], value, "{key} as stored");
    }

    let patch = json!([
        {"operation": "set", "property": "last_name", "value": "Dodo"},
        {"operation": "set", "property": "metadata.level", "value": "2"},
    ]);
    let (status, text) = server
        .call(Method::PATCH, "/users/alice/identity", Some(patch))
        .await;
    assert_eq!((status, text.as_str()), (204, ""));
    let update = next_change(&mut bob_ws, "update", "Identity").await;
    assert_eq!(update["object"]["id"], "layer:///identities/alice");
    assert_eq!(
        update["data"],
        json!([
            {"operation": "set", "property": "last_name", "value": "Dodo"},
            {"operation": "set", "property": "metadata.level", "value": "2"},
        ])
    );
    // The SDK side reads the new fields.
    let full: Value = emulator
        .get("/identities/alice", &bob)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(full["last_name"], "Dodo");
    assert_eq!(full["metadata"], json!({"level": "2"}));
    assert_eq!(full["email_address"], "alice@example.invalid");

    let (status, _) = server
        .call(
            Method::PUT,
            "/users/alice/identity",
            Some(json!({"display_name": "Alice"})),
        )
        .await;
    assert_eq!(status, 204);
    let update = next_change(&mut bob_ws, "update", "Identity").await;
    assert!(
        update["data"]
            .as_array()
            .unwrap()
            .contains(&json!({"operation": "set", "property": "first_name", "value": ""}))
    );
    let (_, got) = server
        .json(Method::GET, "/users/alice/identity", None)
        .await;
    assert_eq!(got["display_name"], "Alice");
    assert_eq!(got["first_name"], Value::Null);
    assert_eq!(got["metadata"], json!({}));

    let (status, text) = server
        .call(Method::DELETE, "/users/alice/identity", None)
        .await;
    assert_eq!((status, text.as_str()), (204, ""));
    let delete = next_change(&mut bob_ws, "delete", "Identity").await;
    assert_eq!(delete["data"], Value::Null);

    // Bad input changes nothing.
    let cases = [
        json!({"first_name": "No display name"}),
        json!({"display_name": "x".repeat(129)}),
        json!({"display_name": "A", "metadata": {"n": 1}}),
        json!({"display_name": "A", "unknown": "x"}),
    ];
    for body in cases {
        let (status, error) = server
            .json(Method::POST, "/users/carol/identity", Some(body.clone()))
            .await;
        assert_eq!(status, 422, "{body}: {error}");
    }
    let (status, error) = server
        .json(Method::GET, "/users/carol/identity", None)
        .await;
    assert_error(status, &error, 404, "not_found", 102);
    let (status, _) = server
        .json(
            Method::PATCH,
            "/users/carol/identity",
            Some(json!([{"operation": "set", "property": "last_name", "value": "x"}])),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_blocked_user_s_messages_never_reach_the_blocker() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;

    let (status, error) = server
        .json(Method::POST, "/users/alice/blocks", Some(json!({})))
        .await;
    assert_error(status, &error, 422, "missing_property", 104);
    assert_eq!(error["data"]["property"], "user_id");

    for _ in 0..2 {
        let (status, text) = server
            .call(
                Method::POST,
                "/users/alice/blocks",
                Some(json!({"user_id": "mallory"})),
            )
            .await;
        assert_eq!((status, text.as_str()), (204, ""));
    }
    let (status, list) = server.json(Method::GET, "/users/alice/blocks", None).await;
    assert_eq!(status, 200);
    assert_eq!(list, json!([{"user_id": "mallory"}]));

    let conversation = server.conversation(&["alice", "bob", "mallory"]).await;
    let alice = emulator.login("alice").await;
    let mut alice_ws = emulator.ws(&alice).await;
    let (status, _) = server
        .send(&conversation, json!({"user_id": "mallory"}), "spam")
        .await;
    assert_eq!(status, 201);
    let (_, from_bob) = server
        .send(&conversation, json!({"user_id": "bob"}), "hello")
        .await;
    // The first message Alice's socket hears of is Bob's.
    let create = next_change(&mut alice_ws, "create", "Message").await;
    assert_eq!(create["object"]["id"], from_bob["id"]);
    let path = format!("/conversations/{}/messages", uuid_of(&conversation));
    let listed: Vec<Value> = emulator.get(&path, &alice).await.json().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], from_bob["id"]);
    let bob = emulator.login("bob").await;
    let bobs: Vec<Value> = emulator.get(&path, &bob).await.json().await.unwrap();
    assert_eq!(bobs.len(), 2, "Bob blocks nobody");

    let (status, text) = server
        .call(Method::DELETE, "/users/alice/blocks/mallory", None)
        .await;
    assert_eq!((status, text.as_str()), (204, ""));
    let (_, list) = server.json(Method::GET, "/users/alice/blocks", None).await;
    assert_eq!(list, json!([]));
    let (status, _) = server
        .call(Method::DELETE, "/users/alice/blocks/nobody", None)
        .await;
    assert_eq!(status, 204, "unblocking someone not blocked is 204");

    // The bulk form, and a user ID with a slash (URL-encoded in paths).
    let patch = json!([
        {"operation": "add", "property": "blocks", "value": "namespace/12345"},
        {"operation": "add", "property": "blocks", "value": "eve"},
        {"operation": "remove", "property": "blocks", "value": "eve"},
    ]);
    let (status, _) = server
        .call(Method::PATCH, "/users/alice", Some(patch))
        .await;
    assert_eq!(status, 202);
    let (_, list) = server.json(Method::GET, "/users/alice/blocks", None).await;
    assert_eq!(list, json!([{"user_id": "namespace/12345"}]));
    let (status, _) = server
        .call(
            Method::DELETE,
            "/users/alice/blocks/namespace%2F12345",
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, list) = server.json(Method::GET, "/users/alice/blocks", None).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn a_block_list_holds_at_most_a_thousand_users_and_a_refused_patch_changes_nothing() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let users = |range: std::ops::Range<usize>| -> Vec<String> {
        range.map(|i| format!("user-{i}")).collect()
    };
    let set =
        |list: Vec<String>| json!([{"operation": "set", "property": "blocks", "value": list}]);
    // One over, in the bulk form: refused whole.
    let (status, body) = server
        .json(Method::PATCH, "/users/alice", Some(set(users(0..1001))))
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["id"], "rate_limit_exceeded");
    let (status, _) = server.json(Method::GET, "/users/alice/blocks", None).await;
    assert_eq!(
        status, 404,
        "nothing was applied: not even alice was provisioned"
    );

    let (status, _) = server
        .call(Method::PATCH, "/users/alice", Some(set(users(0..1000))))
        .await;
    assert_eq!(status, 202, "exactly the cap");
    let (status, body) = server
        .json(
            Method::POST,
            "/users/alice/blocks",
            Some(json!({"user_id": "one-more"})),
        )
        .await;
    assert_eq!(status, 429, "{body}");
    // Adding one and removing another in one patch stays within it.
    let swap = json!([
        {"operation": "add", "property": "blocks", "value": "one-more"},
        {"operation": "remove", "property": "blocks", "value": "user-0"},
    ]);
    let (status, _) = server.call(Method::PATCH, "/users/alice", Some(swap)).await;
    assert_eq!(status, 202);
    let (status, _) = server
        .call(
            Method::POST,
            "/users/alice/blocks",
            Some(json!({"user_id": "user-1"})),
        )
        .await;
    assert_eq!(status, 204, "blocking someone blocked already is no change");
    let (_, list) = server.json(Method::GET, "/users/alice/blocks", None).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1000);
    assert_eq!(list[999], json!({"user_id": "one-more"}));
}

#[tokio::test]
async fn ending_sessions_and_suspending_a_user_close_their_sockets() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let alice = emulator.login("alice").await;
    let mut ws = emulator.ws(&alice).await;

    let (status, text) = server
        .call(Method::DELETE, "/users/alice/sessions", None)
        .await;
    assert_eq!((status, text.as_str()), (204, ""));
    assert!(
        !matches!(
            ws.next_frame(std::time::Duration::from_secs(5)).await,
            Some(tokio_tungstenite::tungstenite::Message::Text(_))
        ),
        "the socket closes"
    );
    let response = emulator.get("/conversations", &alice).await;
    assert_eq!(response.status(), 401, "the session ended");

    let alice = emulator.login("alice").await;
    let suspend = json!([{"operation": "set", "property": "suspended", "value": true}]);
    let (status, _) = server
        .call(Method::PATCH, "/users/alice", Some(suspend))
        .await;
    assert_eq!(status, 202);
    assert_eq!(emulator.get("/conversations", &alice).await.status(), 401);
    let (_, user) = server.json(Method::GET, "/users/alice", None).await;
    assert_eq!(user["suspended"], true);
    // A suspended user gets no new session, even with a valid identity token.
    let nonce = emulator.nonce().await;
    let token = super::helpers::sign(
        &super::helpers::header(super::helpers::KID),
        &super::helpers::claims("alice", &nonce),
    );
    let response = emulator.post_session(&token, STAGING).await;
    assert_eq!(response.status(), 403);

    let unsuspend = json!([{"operation": "set", "property": "suspended", "value": false}]);
    let (status, _) = server
        .call(Method::PATCH, "/users/alice", Some(unsuspend))
        .await;
    assert_eq!(status, 202);
    emulator.login("alice").await;

    let (status, error) = server
        .json(Method::DELETE, "/users/nobody/sessions", None)
        .await;
    assert_error(status, &error, 404, "not_found", 102);
    let (status, error) = server
        .json(
            Method::PATCH,
            "/users/alice",
            Some(json!([{"operation": "set", "property": "suspended", "value": "yes"}])),
        )
        .await;
    assert_error(status, &error, 422, "invalid_property", 105);
}

#[tokio::test]
async fn unknown_paths_and_methods_get_layer_errors_after_the_token_check_and_405s_say_allow() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let (status, error) = server.json(Method::GET, "/nothing/here", None).await;
    assert_error(status, &error, 404, "invalid_endpoint", 106);
    let (status, error) = server.json(Method::PUT, "/conversations", None).await;
    assert_error(status, &error, 405, "method_not_allowed", 109);
    let response = server
        .request(Method::PUT, "/conversations/some-conversation")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let allow = response.headers().get("allow").map(|v| v.to_str().unwrap());
    assert_eq!(allow, Some("GET, PATCH, DELETE"));
    let response = server
        .request(Method::GET, "/notifications")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let allow = response.headers().get("allow").map(|v| v.to_str().unwrap());
    assert_eq!(allow, Some("POST"));
    let response = emulator
        .http
        .get(format!("{}/apps/{APP_UUID}/nothing/here", emulator.url))
        .header("accept", V1)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn announcements_reach_each_recipient_s_socket_and_list_and_take_receipts() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let alice = emulator.login("alice").await;
    let mut alice_ws = emulator.ws(&alice).await;

    let (status, error) = server
        .json(Method::POST, "/announcements", Some(json!({})))
        .await;
    assert_error(status, &error, 422, "missing_property", 104);
    assert_eq!(error["data"]["property"], "recipients");
    let from_user = json!({"recipients": ["alice"], "sender": {"user_id": "bob"},
                           "parts": [{"mime_type": "text/plain", "body": "x"}]});
    let (status, _) = server
        .json(Method::POST, "/announcements", Some(from_user))
        .await;
    assert_eq!(status, 422, "an announcement has a name sender");

    let body = json!({"recipients": ["alice", "bob"], "sender": {"name": "The System"},
                      "parts": [{"mime_type": "text/plain", "body": "maintenance tonight"}],
                      "notification": {"text": "maintenance", "sound": "chime.aiff"}});
    let (status, sent) = server
        .json(Method::POST, "/announcements", Some(body))
        .await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["recipients"], json!(["alice", "bob"]));
    assert_eq!(
        sent["sender"],
        json!({"name": "The System", "user_id": null})
    );
    assert!(
        sent["id"]
            .as_str()
            .unwrap()
            .starts_with("layer:///announcements/")
    );

    let create = next_change(&mut alice_ws, "create", "Announcement").await;
    assert_eq!(create["object"]["id"], sent["id"]);
    assert_eq!(create["data"]["sender"]["display_name"], "The System");
    assert_eq!(create["data"]["is_unread"], true);
    assert!(create["data"].get("conversation").is_none());
    assert_eq!(
        create["data"]["recipient_status"],
        json!({"layer:///identities/alice": "sent"}),
        "only the viewer"
    );

    let response = emulator.get("/announcements", &alice).await;
    assert_eq!(response.headers()["layer-count"], "1");
    let listed: Vec<Value> = response.json().await.unwrap();
    assert_eq!(listed[0]["parts"][0]["body"], "maintenance tonight");
    let path = format!("/announcements/{}", uuid_of(&sent));
    let response = emulator
        .post(&format!("{path}/receipts"), &alice, json!({"type": "read"}))
        .await;
    assert_eq!(response.status(), 204);
    let one: Value = emulator.get(&path, &alice).await.json().await.unwrap();
    assert_eq!(one["is_unread"], false);
    let carol = emulator.login("carol").await;
    assert_eq!(emulator.get(&path, &carol).await.status(), 404, "not hers");
    let notes = emulator.notifications().await;
    assert!(notes.iter().any(|n| n["message"] == sent["id"]));

    let response = emulator.send(Method::DELETE, &path, &alice, None).await;
    assert_eq!(response.status(), 204);
    let delete = next_change(&mut alice_ws, "delete", "Announcement").await;
    assert_eq!(delete["object"]["id"], sent["id"]);
    assert_eq!(emulator.get(&path, &alice).await.status(), 404);
    let bob = emulator.login("bob").await;
    assert_eq!(
        emulator.get(&path, &bob).await.status(),
        200,
        "bob's copy stays"
    );
}

#[tokio::test]
async fn under_3_0_the_server_edits_a_sent_message_s_parts_and_viewers_get_the_changes() {
    let emulator = spawn_emulator().await;
    let v3 = Server {
        accept: "application/vnd.layer+json; version=3.0",
        ..Server::of(&emulator).await
    };
    let alice = emulator.login("alice").await;
    let conversation = v3.conversation(&["alice", "bob"]).await;
    let (_, sent) = v3
        .send(&conversation, json!({"name": "Bot"}), "first")
        .await;
    // Part changes go to Client API 3.0 sockets (the XDK's).
    let mut ws = emulator.ws_with_protocol(&alice, "layer-3.0").await;
    let parts_path = format!(
        "/conversations/{}/messages/{}/parts",
        uuid_of(&conversation),
        uuid_of(&sent)
    );
    let message_id = sent["id"].as_str().unwrap().to_owned();

    let v1 = Server::of(&emulator).await;
    let (status, error) = v1.json(Method::GET, &parts_path, None).await;
    assert_error(status, &error, 404, "invalid_endpoint", 106);

    let (status, parts) = v3.json(Method::GET, &parts_path, None).await;
    assert_eq!(status, 200);
    assert_eq!(parts[0]["id"], format!("{message_id}/parts/0"));

    let (status, added) = v3
        .json(
            Method::POST,
            &parts_path,
            Some(json!({"mime_type": "application/json", "body": "{\"n\":1}"})),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    let added_id = added["id"].as_str().unwrap().to_owned();
    assert!(added_id.starts_with(&format!("{message_id}/parts/")));
    let update = next_change(&mut ws, "update", "Message").await;
    assert_eq!(update["object"]["id"], message_id);
    assert_eq!(update["data"][0]["operation"], "add");
    assert_eq!(update["data"][0]["property"], "parts");
    assert_eq!(update["data"][0]["id"], added_id);
    assert_eq!(update["data"][0]["value"]["body"], "{\"n\":1}");

    let key = added_id.rsplit('/').next().unwrap();
    let (status, text) = v3
        .call(
            Method::PUT,
            &format!("{parts_path}/{key}"),
            Some(json!({"mime_type": "application/json", "body": "{\"n\":2}"})),
        )
        .await;
    assert_eq!((status, text.as_str()), (204, ""));
    let update = next_change(&mut ws, "update", "MessagePart").await;
    assert_eq!(update["object"]["id"], added_id);
    assert_eq!(
        update["data"],
        json!([{"operation": "set", "property": "body", "value": "{\"n\":2}"}])
    );

    let (status, _) = v3
        .call(Method::DELETE, &format!("{parts_path}/0"), None)
        .await;
    assert_eq!(status, 204);
    let update = next_change(&mut ws, "update", "Message").await;
    assert_eq!(
        update["data"],
        json!([{"operation": "remove", "property": "parts", "id": format!("{message_id}/parts/0")}])
    );
    // The SDK side reads the parts as they are now.
    let seen: Value = emulator
        .get(&format!("/messages/{}", uuid_of(&sent)), &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["parts"].as_array().unwrap().len(), 1);
    assert_eq!(seen["parts"][0]["id"], added_id);
    assert_eq!(seen["parts"][0]["body"], "{\"n\":2}");

    // Bad input changes nothing: the last part stays, an oversized body is refused.
    let (status, error) = v3
        .json(Method::DELETE, &format!("{parts_path}/{key}"), None)
        .await;
    assert_error(status, &error, 422, "invalid_property", 105);
    let (status, error) = v3
        .json(
            Method::PUT,
            &format!("{parts_path}/{key}"),
            Some(json!({"mime_type": "text/plain", "body": "x".repeat(2049)})),
        )
        .await;
    assert_error(status, &error, 422, "invalid_property", 105);
    let (status, error) = v3
        .json(Method::GET, &format!("{parts_path}/nope"), None)
        .await;
    assert_error(status, &error, 404, "not_found", 102);
    let (_, parts) = v3.json(Method::GET, &parts_path, None).await;
    assert_eq!(parts.as_array().unwrap().len(), 1);
    assert_eq!(parts[0]["body"], "{\"n\":2}");

    let (status, _) = v3
        .call(
            Method::PUT,
            &parts_path,
            Some(json!([{"mime_type": "text/plain", "body": "a"}, {"mime_type": "text/plain", "body": "b"}])),
        )
        .await;
    assert_eq!(status, 204);
    let update = next_change(&mut ws, "update", "Message").await;
    let ops: Vec<&str> = update["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["remove", "add", "add"]);
    let (_, parts) = v3.json(Method::GET, &parts_path, None).await;
    assert_eq!(parts[1]["body"], "b");
}

#[tokio::test]
async fn a_scheduled_message_is_sent_when_the_emulator_s_clock_reaches_its_time() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let alice = emulator.login("alice").await;
    let conversation = server.conversation(&["alice", "bob"]).await;
    let path = format!("/conversations/{}/messages", uuid_of(&conversation));
    let advance = |secs: i64| emulator.advance_clock_ms(secs * 1000);
    let mut ws = emulator.ws(&alice).await;

    for bad in [
        json!({"delay_in_seconds": 0.5}),
        json!({"delay_in_seconds": 301}),
        json!({"delay_in_seconds": 10, "typing_indicator_in_seconds": 11}),
        json!({"typing_indicator_in_seconds": 2}),
    ] {
        let body = json!({"sender": {"user_id": "bob"}, "schedule": bad,
                          "parts": [{"mime_type": "text/plain", "body": "x"}]});
        let (status, error) = server.json(Method::POST, &path, Some(body)).await;
        assert_eq!(status, 422, "{bad}: {error}");
    }

    let body = json!({
        "sender": {"user_id": "bob"},
        "parts": [{"mime_type": "text/plain", "body": "in a minute"}],
        "schedule": {"delay_in_seconds": 60, "typing_indicator_in_seconds": 10},
    });
    let (status, pending) = server.json(Method::POST, &path, Some(body)).await;
    assert_eq!(status, 202, "{pending}");
    assert_eq!(pending["sent_at"], Value::Null);

    advance(49).await;
    assert!(
        listed_messages(&emulator, &path, &alice).await.is_empty(),
        "not yet"
    );
    advance(2).await;
    // Within its last ten seconds, Bob is shown typing.
    let signal = loop {
        let packet = ws.recv().await;
        if packet["type"] == "signal" {
            break packet;
        }
    };
    assert_eq!(signal["body"]["type"], "typing_indicator");
    assert_eq!(signal["body"]["data"]["action"], "started");
    assert_eq!(signal["body"]["data"]["sender"]["user_id"], "bob");
    assert!(
        listed_messages(&emulator, &path, &alice).await.is_empty(),
        "still not yet"
    );
    // 3 s later on the emulator's clock the indicator is sent again (every 2.5 s at least).
    advance(3).await;
    let signal = loop {
        let packet = ws.recv().await;
        if packet["type"] == "signal" {
            break packet;
        }
    };
    assert_eq!(signal["body"]["data"]["action"], "started");
    assert!(
        listed_messages(&emulator, &path, &alice).await.is_empty(),
        "nor yet"
    );

    advance(6).await;
    let listed = listed_messages(&emulator, &path, &alice).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], pending["id"]);
    assert_eq!(listed[0]["parts"][0]["body"], "in a minute");
    let create = next_change(&mut ws, "create", "Message").await;
    assert_eq!(create["object"]["id"], pending["id"]);

    // A delayed message whose conversation is deleted meanwhile is never sent.
    let body = json!({"sender": {"name": "Bot"}, "parts": [{"mime_type": "text/plain", "body": "late"}],
                      "schedule": {"delay_in_seconds": 5}});
    let (status, late) = server.json(Method::POST, &path, Some(body)).await;
    assert_eq!(status, 202);
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/conversations/{}", uuid_of(&conversation)),
            None,
        )
        .await;
    assert_eq!(status, 204);
    advance(10).await;
    let (status, _) = server
        .json(Method::GET, &format!("/messages/{}", uuid_of(&late)), None)
        .await;
    assert_eq!(status, 404);
}

async fn listed_messages(emulator: &Emulator, path: &str, session: &str) -> Vec<Value> {
    emulator.get(path, session).await.json().await.unwrap()
}

#[tokio::test]
async fn pushes_badges_and_the_3_0_proxy_act_for_a_user() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let v3 = Server {
        accept: "application/vnd.layer+json; version=3.0",
        ..Server::of(&emulator).await
    };
    let conversation = server.conversation(&["alice", "bob"]).await;
    let bob = emulator.login("bob").await;
    let mut bob_ws = emulator.ws(&bob).await;

    // POST /notifications: a push, nothing else.
    let (status, error) = server
        .json(
            Method::POST,
            "/notifications",
            Some(json!({"notification": {"text": "x"}})),
        )
        .await;
    assert_error(status, &error, 422, "missing_property", 104);
    let (status, body) = server
        .json(
            Method::POST,
            "/notifications",
            Some(
                json!({"recipients": ["bob"], "notification": {"text": "ping", "sound": "a.aiff"}}),
            ),
        )
        .await;
    assert_eq!((status, &body), (202, &json!({})));
    let notes = emulator.notifications().await;
    let last = notes.last().unwrap();
    assert_eq!(last["recipients"], json!(["layer:///identities/bob"]));
    assert_eq!(last["notification"]["text"], "ping");

    // The proxy sends as Alice, in Client API shapes, to the same sockets.
    let messages = format!(
        "/users/alice/conversations/{}/messages",
        uuid_of(&conversation)
    );
    let part = json!({"parts": [{"mime_type": "text/plain", "body": "via the proxy"}]});
    let (status, error) = server
        .json(Method::POST, &messages, Some(part.clone()))
        .await;
    assert_error(status, &error, 404, "invalid_endpoint", 106);
    let (status, sent) = v3.json(Method::POST, &messages, Some(part)).await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["sender"]["id"], "layer:///identities/alice");
    let create = next_change(&mut bob_ws, "create", "Message").await;
    assert_eq!(create["object"]["id"], sent["id"]);

    // Badges count what Bob has not read; the app's own count comes along.
    let (status, badge) = server.json(Method::GET, "/users/bob/badge", None).await;
    assert_eq!(status, 200);
    assert_eq!(badge["unread_message_count"], 1);
    assert_eq!(badge["unread_conversation_count"], 1);
    let (status, text) = server
        .call(
            Method::PUT,
            "/users/bob/badge",
            Some(json!({"external_unread_count": 13})),
        )
        .await;
    assert_eq!((status, text.as_str()), (204, ""));
    let (status, error) = server
        .json(
            Method::PUT,
            "/users/bob/badge",
            Some(json!({"external_unread_count": -1})),
        )
        .await;
    assert_error(status, &error, 422, "invalid_property", 105);
    let (_, badge) = server.json(Method::GET, "/users/bob/badge", None).await;
    assert_eq!(badge["external_unread_count"], 13);

    // A receipt and mark-all-read on Bob's behalf.
    let receipt = format!("/users/bob/messages/{}/receipts", uuid_of(&sent));
    let (status, _) = v3
        .call(Method::POST, &receipt, Some(json!({"type": "delivery"})))
        .await;
    assert_eq!(status, 204);
    let read = format!(
        "/users/bob/conversations/{}/mark_all_read",
        uuid_of(&conversation)
    );
    let (status, _) = v3
        .call(Method::POST, &read, Some(json!({"position": null})))
        .await;
    assert_eq!(status, 204);
    let (_, badge) = server.json(Method::GET, "/users/bob/badge", None).await;
    assert_eq!(badge["unread_message_count"], 0);
    let (_, got) = server
        .json(Method::GET, &format!("/messages/{}", uuid_of(&sent)), None)
        .await;
    assert_eq!(got["recipient_status"]["bob"], "read");

    // Deleting for Bob's devices leaves it for Alice.
    let mine = format!("/users/bob/messages/{}?mode=my_devices", uuid_of(&sent));
    let (status, _) = v3.call(Method::DELETE, &mine, None).await;
    assert_eq!(status, 204);
    let (status, _) = server
        .json(
            Method::GET,
            &format!("/users/bob/messages/{}", uuid_of(&sent)),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .json(
            Method::GET,
            &format!("/users/alice/messages/{}", uuid_of(&sent)),
            None,
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bad_input_on_every_platform_route_gets_a_layer_error_and_changes_nothing() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let v3 = Server {
        accept: "application/vnd.layer+json; version=3.0",
        ..Server::of(&emulator).await
    };
    let conversation = server.conversation(&["alice", "bob"]).await;
    let c = uuid_of(&conversation);
    let (_, message) = server
        .send(&conversation, json!({"user_id": "alice"}), "kept")
        .await;
    let m = uuid_of(&message);
    let too_many: Vec<String> = (0..26).map(|i| format!("u{i}")).collect();
    let big = "x".repeat(2049);
    let unknown = "00000000-0000-4000-8000-000000000000";

    // (server, method, path, raw body, status, error id)
    let cases: Vec<(&Server, Method, String, &str, u16, &str)> = vec![
        (
            &server,
            Method::POST,
            "/conversations".into(),
            "{not json",
            400,
            "invalid_request",
        ),
        (
            &server,
            Method::POST,
            "/conversations".into(),
            "[]",
            400,
            "invalid_request",
        ),
        (
            &server,
            Method::PATCH,
            format!("/conversations/{c}"),
            "{\"op\": 1}",
            400,
            "invalid_request",
        ),
        (
            &server,
            Method::PATCH,
            format!("/conversations/{c}"),
            "[{\"operation\": \"frob\", \"property\": \"participants\", \"value\": \"x\"}]",
            422,
            "invalid_property",
        ),
        (
            &server,
            Method::PATCH,
            format!("/conversations/{c}"),
            "[{\"operation\": \"set\", \"property\": \"title\", \"value\": \"x\"}]",
            422,
            "invalid_property",
        ),
        (
            &server,
            Method::PATCH,
            format!("/conversations/{unknown}"),
            "[]",
            404,
            "not_found",
        ),
        (
            &server,
            Method::PATCH,
            "/conversations/not-a-uuid".into(),
            "[]",
            404,
            "not_found",
        ),
        (
            &server,
            Method::DELETE,
            format!("/conversations/{unknown}"),
            "",
            404,
            "not_found",
        ),
        (
            &server,
            Method::POST,
            format!("/conversations/{c}/messages"),
            "{bad",
            400,
            "invalid_request",
        ),
        (
            &server,
            Method::POST,
            format!("/conversations/{c}/messages"),
            "{\"sender\": {\"name\": \"\"}, \"parts\": [{\"mime_type\": \"text/plain\", \"body\": \"x\"}]}",
            422,
            "invalid_property",
        ),
        (
            &server,
            Method::POST,
            format!("/conversations/{c}/messages"),
            "{\"sender\": {\"name\": \"A\"}, \"parts\": [{\"mime_type\": \"text\", \"body\": \"x\"}]}",
            422,
            "invalid_property",
        ),
        (
            &server,
            Method::POST,
            format!("/conversations/{c}/messages"),
            "{\"sender\": {\"name\": \"A\"}, \"parts\": [{\"mime_type\": \"text/plain\", \"body\": \"%%%\", \"encoding\": \"base64\"}]}",
            422,
            "invalid_property",
        ),
        (
            &server,
            Method::DELETE,
            format!("/conversations/{c}/messages/{unknown}"),
            "",
            404,
            "not_found",
        ),
        (
            &server,
            Method::GET,
            format!("/messages/{unknown}"),
            "",
            404,
            "not_found",
        ),
        (
            &server,
            Method::GET,
            "/users/nobody/conversations".into(),
            "",
            404,
            "not_found",
        ),
        (
            &server,
            Method::GET,
            "/users/alice/conversations?page_size=0".into(),
            "",
            422,
            "invalid_property",
        ),
        (
            &server,
            Method::GET,
            "/users/alice/conversations?sort_by=size".into(),
            "",
            422,
            "invalid_property",
        ),
        (
            &server,
            Method::POST,
            "/announcements".into(),
            "{\"recipients\": \"alice\", \"sender\": {\"name\": \"A\"}, \"parts\": []}",
            422,
            "invalid_property",
        ),
        (
            &server,
            Method::POST,
            "/users/alice/identity".into(),
            "not json",
            400,
            "invalid_request",
        ),
        (
            &server,
            Method::PATCH,
            "/users/alice/identity".into(),
            "[{\"operation\": \"set\", \"property\": \"shoe_size\", \"value\": \"9\"}]",
            422,
            "invalid_property",
        ),
        (
            &server,
            Method::PATCH,
            "/users/alice".into(),
            "[{\"operation\": \"add\", \"property\": \"friends\", \"value\": \"x\"}]",
            422,
            "invalid_property",
        ),
        (
            &server,
            Method::PATCH,
            "/users/alice".into(),
            "{}",
            400,
            "invalid_request",
        ),
        (
            &server,
            Method::POST,
            "/users/alice/blocks".into(),
            "{\"user_id\": 5}",
            422,
            "invalid_property",
        ),
        (
            &server,
            Method::PUT,
            "/users/alice/badge".into(),
            "{}",
            422,
            "missing_property",
        ),
        (
            &v3,
            Method::POST,
            format!("/conversations/{c}/messages/{m}/parts"),
            "[1]",
            400,
            "invalid_request",
        ),
        (
            &v3,
            Method::PUT,
            format!("/conversations/{c}/messages/{m}/parts"),
            "[]",
            422,
            "invalid_property",
        ),
        (
            &v3,
            Method::POST,
            format!("/conversations/{c}/messages/{unknown}/parts"),
            "{\"mime_type\": \"text/plain\", \"body\": \"x\"}",
            404,
            "not_found",
        ),
        (
            &v3,
            Method::POST,
            format!("/users/alice/conversations/{c}/mark_all_read"),
            "{\"position\": \"x\"}",
            422,
            "invalid_property",
        ),
        (
            &v3,
            Method::POST,
            format!("/users/alice/messages/{m}/receipts"),
            "{\"type\": \"seen\"}",
            422,
            "invalid_property",
        ),
        (
            &v3,
            Method::DELETE,
            format!("/users/alice/messages/{m}?mode=sideways"),
            "",
            422,
            "invalid_property",
        ),
    ];
    for (client, method, path, body, status, id) in cases {
        let mut request = client.request(method.clone(), &path);
        if !body.is_empty() {
            request = request.body(body.to_owned());
        }
        let response = request.send().await.unwrap();
        let got = response.status().as_u16();
        let error: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(
            (got, error["id"].as_str()),
            (status, Some(id)),
            "{method} {path} {body}: {error}"
        );
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let bodies = [
        json!({"participants": too_many}),
        json!({"participants": ["a"], "metadata": {"n": 1}}),
    ];
    for body in bodies {
        let (status, error) = server
            .json(Method::POST, "/conversations", Some(body))
            .await;
        assert_error(status, &error, 422, "invalid_property", 105);
    }
    let (status, error) = server
        .json(
            Method::PATCH,
            &format!("/conversations/{c}"),
            Some(json!([{"operation": "set", "property": "participants", "value": too_many}])),
        )
        .await;
    assert_error(status, &error, 422, "invalid_property", 105);
    let (status, error) = server.send(&conversation, json!({"name": "A"}), &big).await;
    assert_error(status, &error, 422, "invalid_property", 105);

    // Nothing changed: one conversation, one message, alice without a declared identity.
    let (_, got) = server
        .json(Method::GET, &format!("/conversations/{c}"), None)
        .await;
    assert_eq!(got["participants"], json!(["alice", "bob"]));
    assert_eq!(got["metadata"], json!({}));
    let response = server
        .request(Method::GET, &format!("/conversations/{c}/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["layer-count"], "1");
    let (_, parts) = v3
        .json(
            Method::GET,
            &format!("/conversations/{c}/messages/{m}/parts"),
            None,
        )
        .await;
    assert_eq!(parts[0]["body"], "kept");
    let (_, blocks) = server.json(Method::GET, "/users/alice/blocks", None).await;
    assert_eq!(blocks, json!([]));
    let (_, user) = server
        .json(Method::GET, "/users/alice/conversations", None)
        .await;
    assert_eq!(user.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_app_s_session_lifetime_is_set_within_layer_s_bounds() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let ttl = |emulator: &Emulator| {
        let emulator = emulator.url.clone();
        async move {
            let apps: Value = reqwest::get(format!("{emulator}/_mock/apps"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            apps["session_ttl_secs"][STAGING].clone()
        }
    };
    assert_eq!(ttl(&emulator).await, 86_400);
    for bad in [json!(29), json!(31_536_001), json!("3600")] {
        let (status, error) = server
            .json(
                Method::PATCH,
                "",
                Some(json!([{"operation": "set", "property": "session_ttl_in_seconds", "value": bad}])),
            )
            .await;
        assert_error(status, &error, 422, "invalid_property", 105);
    }
    assert_eq!(ttl(&emulator).await, 86_400, "nothing changed");
    let (status, text) = server
        .call(
            Method::PATCH,
            "",
            Some(
                json!([{"operation": "set", "property": "session_ttl_in_seconds", "value": 3600}]),
            ),
        )
        .await;
    assert_eq!((status, text.as_str()), (202, ""));
    assert_eq!(ttl(&emulator).await, 3600);
    // Sessions still open after it.
    let session = emulator.login("alice").await;
    assert_eq!(emulator.get("/conversations", &session).await.status(), 200);
}

#[tokio::test]
async fn following_under_2_0_covers_explicit_and_conversation_follows() {
    let emulator = spawn_emulator().await;
    let v1 = Server::of(&emulator).await;
    let v2 = Server {
        accept: V2,
        ..Server::of(&emulator).await
    };
    v2.conversation(&["alice", "bob"]).await;
    let (status, error) = v1.json(Method::GET, "/users/alice/following", None).await;
    assert_error(status, &error, 404, "invalid_endpoint", 106);

    let (status, text) = v2
        .call(Method::PUT, "/users/alice/following/carol", None)
        .await;
    assert_eq!((status, text.as_str()), (204, ""));
    let (status, _) = v2
        .call(
            Method::POST,
            "/users/alice/following",
            Some(json!(["layer:///identities/dave"])),
        )
        .await;
    assert_eq!(status, 202);
    let (status, list) = v2.json(Method::GET, "/users/alice/following", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        list,
        json!([
            "layer:///identities/bob",
            "layer:///identities/carol",
            "layer:///identities/dave"
        ])
    );
    let (status, _) = v2
        .call(Method::GET, "/users/alice/following/bob", None)
        .await;
    assert_eq!(status, 204, "a fellow participant is followed");
    let (status, _) = v2
        .call(Method::DELETE, "/users/alice/following/carol", None)
        .await;
    assert_eq!(status, 204);
    let (status, error) = v2
        .json(Method::GET, "/users/alice/following/carol", None)
        .await;
    assert_error(status, &error, 404, "not_found", 102);
    let (status, identities) = v2.json(Method::GET, "/users/alice/identities", None).await;
    assert_eq!(status, 200);
    assert_eq!(identities[0]["id"], "layer:///identities/bob");
    assert_eq!(identities.as_array().unwrap().len(), 2);
    let (status, error) = v2
        .json(
            Method::POST,
            "/users/alice/following",
            Some(json!({"a": 1})),
        )
        .await;
    assert_error(status, &error, 400, "invalid_request", 10);
}

#[tokio::test]
async fn the_server_uploads_rich_content_and_sends_it_as_a_user() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let conversation = server.conversation(&["alice", "bob"]).await;
    let c = uuid_of(&conversation);
    let bytes = "ü".repeat(1500);
    let response = server
        .request(Method::POST, &format!("/conversations/{c}/content"))
        .header("upload-content-type", "text/plain")
        .header("upload-content-length", bytes.len().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(&format!("/apps/{APP_UUID}/conversations/{c}/content/"))
    );
    let reserved: Value = response.json().await.unwrap();
    let content_id = reserved["id"].as_str().unwrap().to_owned();
    let part = json!({"sender": {"user_id": "alice"},
                      "parts": [{"mime_type": "text/plain", "content": {"id": content_id, "size": bytes.len()}}]});
    let path = format!("/conversations/{c}/messages");
    let (status, error) = server.json(Method::POST, &path, Some(part.clone())).await;
    assert_error(status, &error, 422, "invalid_property", 105);
    let content_path = format!("/conversations/{c}/content/{}", uuid_of(&reserved));
    let (status, _) = server.json(Method::GET, &content_path, None).await;
    assert_eq!(status, 404, "nothing uploaded yet");

    let upload = emulator
        .http
        .put(reserved["upload_url"].as_str().unwrap())
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert!(upload.status().is_success());
    let (status, got) = server.json(Method::GET, &content_path, None).await;
    assert_eq!(status, 200);
    assert_eq!(got["size"], bytes.len());
    let (status, sent) = server.json(Method::POST, &path, Some(part)).await;
    assert_eq!(status, 201, "{sent}");

    // Bob's SDK side downloads what the server uploaded.
    let bob = emulator.login("bob").await;
    let seen: Value = emulator
        .get(&format!("/messages/{}", uuid_of(&sent)), &bob)
        .await
        .json()
        .await
        .unwrap();
    let url = seen["parts"][0]["content"]["download_url"]
        .as_str()
        .unwrap();
    let downloaded = emulator
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(downloaded, bytes);
    // A user cannot send the server's content as their own.
    let alice = emulator.login("alice").await;
    let response = emulator
        .post(
            &path,
            &alice,
            json!({"parts": [{"mime_type": "text/plain", "content": {"id": content_id, "size": bytes.len()}}]}),
        )
        .await;
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn a_post_with_x_http_method_override_patch_is_a_patch() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let conversation = server.conversation(&["alice"]).await;
    let path = format!("/conversations/{}", uuid_of(&conversation));
    let response = server
        .request(Method::POST, &path)
        .header("x-http-method-override", "PATCH")
        .body(json!([{"operation": "add", "property": "participants", "value": "bob"}]).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (_, got) = server.json(Method::GET, &path, None).await;
    assert_eq!(got["participants"], json!(["alice", "bob"]));
    // Without the header a POST there is not allowed.
    let (status, error) = server.json(Method::POST, &path, Some(json!([]))).await;
    assert_error(status, &error, 405, "method_not_allowed", 109);
}
