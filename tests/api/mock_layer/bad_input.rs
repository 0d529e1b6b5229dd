//! Bad input of every class gets Layer's error shape and a 4xx, closes at most the
//! offending socket, and leaves the emulator serving everyone else.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;

use super::helpers::*;

fn assert_layer_error(body: &Value) {
    for key in ["id", "code", "message", "url", "data"] {
        assert!(body.get(key).is_some(), "{key} missing in {body}");
    }
}

/// Everything `session`'s user can read: each of their conversations with its messages.
async fn everything_seen_by(emulator: &Emulator, session: &str) -> Value {
    let conversations: Vec<Value> = emulator
        .get("/conversations", session)
        .await
        .json()
        .await
        .unwrap();
    let mut seen = Vec::new();
    for conversation in conversations {
        let messages: Value = emulator
            .get(&format!("{}/messages", path_of(&conversation)), session)
            .await
            .json()
            .await
            .unwrap();
        seen.push(json!({"conversation": conversation, "messages": messages}));
    }
    Value::Array(seen)
}

#[tokio::test]
async fn every_body_taking_route_answers_malformed_json_and_wrong_types_with_layer_errors() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let c = emulator.conversation(&alice, &["bob"]).await;
    let m = emulator.message(&alice, &c, "x").await;
    let before = (
        everything_seen_by(&emulator, &alice).await,
        everything_seen_by(&emulator, &bob).await,
    );
    let routes = [
        (Method::POST, "/sessions".to_owned()),
        (Method::POST, "/conversations".to_owned()),
        (Method::PATCH, path_of(&c)),
        (Method::POST, format!("{}/messages", path_of(&c))),
        (Method::POST, format!("{}/mark_all_read", path_of(&c))),
        (Method::POST, format!("{}/receipts", path_of(&m))),
    ];
    for (method, path) in &routes {
        for body in [
            "{not json",
            "[1,2",
            "\"a string\"",
            "42",
            "{\"participants\": 7, \"parts\": {}, \"type\": [], \"position\": \"x\", \"identity_token\": 5}",
        ] {
            let response = emulator
                .http
                .request(method.clone(), format!("{}{path}", emulator.url))
                .header("authorization", auth(&alice))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            assert!(
                (400..500).contains(&status),
                "{method} {path} {body}: {status}"
            );
            assert_layer_error(&response.json().await.unwrap());
        }
    }
    let after = (
        everything_seen_by(&emulator, &alice).await,
        everything_seen_by(&emulator, &bob).await,
    );
    assert_eq!(after, before, "refused requests changed something");
}

#[tokio::test]
async fn huge_bodies_are_refused_without_reading_them_all() {
    let emulator = spawn_with(|s| {
        s.max_body_bytes = 8 * 1024;
        s.max_content_bytes = 16 * 1024;
    })
    .await;
    let alice = emulator.login("alice").await;
    // A body announced as 100 MB, of which 16 KiB are sent: the answer comes without the rest.
    let status = emulator
        .status_before_the_body_is_sent(
            &format!(
                "POST /conversations HTTP/1.1\r\nAuthorization: {}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100000000",
                auth(&alice)
            ),
            &[b' '; 16 * 1024],
        )
        .await;
    assert_eq!(status, Some(400), "answered before the body was read");
    let huge = format!("{{\"participants\": [\"{}\"]}}", "b".repeat(64 * 1024));
    let response = emulator
        .http
        .post(format!("{}/conversations", emulator.url))
        .header("authorization", auth(&alice))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("limit"),
        "{body}"
    );
    let declared = emulator
        .http
        .post(format!("{}/content", emulator.url))
        .header("authorization", auth(&alice))
        .header("upload-content-length", "999999999")
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 422);
}

#[tokio::test]
async fn an_upload_url_is_checked_before_its_body_is_read() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    // No such upload: refused before any of the (announced) 100 MB is read, although the
    // emulator would take up to 16 MiB for a real one.
    let unknown = emulator
        .status_before_the_body_is_sent(
            "PUT /content-upload/not-a-secret HTTP/1.1\r\nContent-Length: 100000000",
            &[0; 1024],
        )
        .await;
    assert_eq!(unknown, Some(404));
    // A real upload declared as 10 bytes: a longer body is refused unread, announced or not.
    let content: Value = emulator
        .reserve_content(&alice, 10)
        .await
        .json()
        .await
        .unwrap();
    let upload = content["upload_url"].as_str().unwrap();
    let path = &upload[emulator.url.len()..];
    let announced = emulator
        .status_before_the_body_is_sent(
            &format!("PUT {path} HTTP/1.1\r\nContent-Length: 1000000"),
            &[0; 1024],
        )
        .await;
    assert_eq!(announced, Some(400));
    let chunked = emulator
        .status_before_the_body_is_sent(
            &format!("PUT {path} HTTP/1.1\r\nTransfer-Encoding: chunked"),
            format!("400\r\n{}\r\n", "x".repeat(0x400)).as_bytes(),
        )
        .await;
    assert_eq!(chunked, Some(400));
    // Nothing was stored: the right bytes still go up.
    let put = emulator
        .http
        .put(upload)
        .body("0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
}

#[tokio::test]
async fn unknown_paths_methods_and_ids_get_layer_errors() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let cases = [
        (Method::GET, "/nowhere", 404, "invalid_endpoint"),
        (Method::PUT, "/conversations", 405, "method_not_allowed"),
        (Method::GET, "/conversations/not-a-uuid", 404, "not_found"),
        (
            Method::GET,
            "/conversations/00000000-0000-4000-8000-000000000000",
            404,
            "not_found",
        ),
        (
            Method::GET,
            "/messages/00000000-0000-4000-8000-000000000000",
            404,
            "not_found",
        ),
        (
            Method::GET,
            "/content/00000000-0000-4000-8000-000000000000",
            404,
            "not_found",
        ),
        (Method::GET, "/content-download/nope", 404, "not_found"),
        // Never decoded lossily into a user named U+FFFD.
        (Method::GET, "/identities/%FF", 400, "invalid_request"),
        (Method::GET, "/identities/%C3", 400, "invalid_request"),
        (Method::GET, "/identities/a%G1", 400, "invalid_request"),
        (
            Method::DELETE,
            "/messages/00000000-0000-4000-8000-000000000000?mode=bogus",
            422,
            "invalid_property",
        ),
    ];
    for (method, path, status, id) in cases {
        let response = emulator.send(method.clone(), path, &alice, None).await;
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["id"], id, "{method} {path}");
        assert_layer_error(&body);
    }
}

#[tokio::test]
async fn bad_socket_input_is_survived_or_closes_only_that_socket() {
    let emulator = spawn_with(|s| s.max_frame_bytes = 8 * 1024).await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let c = emulator.conversation(&alice, &["bob"]).await;
    emulator.message(&alice, &c, "before the bad input").await;
    let before = everything_seen_by(&emulator, &alice).await;
    let mut bob_ws = emulator.ws(&bob).await;
    let mut ws = emulator.ws(&alice).await;
    bob_ws.drain(Duration::from_millis(100)).await;
    // Survived: not JSON, unknown types, no request_id, unknown methods, wrong data types.
    for text in [
        "not json",
        "[]",
        "{\"type\": \"gossip\"}",
        "{\"type\": \"request\", \"body\": {\"method\": \"Counter.read\"}}",
    ] {
        ws.send_text(text).await;
    }
    let cases = [
        ("Nope.nothing", None, json!({})),
        ("Conversation.create", None, json!({"participants": 5})),
        ("Conversation.create", None, json!("x")),
        (
            "Message.create",
            Some("layer:///conversations/nope"),
            json!({"parts": []}),
        ),
        (
            "Message.create",
            None,
            json!({"parts": [{"mime_type": "text/plain", "body": "x"}]}),
        ),
        (
            "Presence.update",
            None,
            json!([{"operation": "set", "property": "status", "value": "asleep"}]),
        ),
        ("Presence.sync", None, json!({"ids": "bob"})),
        // Into the real conversation, but not a message.
        ("Message.create", c["id"].as_str(), json!({"parts": []})),
        (
            "Message.create",
            c["id"].as_str(),
            json!({"parts": [{"mime_type": "text/plain", "body": "x", "encoding": "rot13"}]}),
        ),
        (
            "Conversation.create",
            None,
            json!({"participants": ["layer:///identities/bob"], "id": c["id"]}),
        ),
    ];
    for (method, object_id, data) in cases {
        let (response, _) = ws.request(method, object_id, data).await;
        assert_eq!(response["body"]["success"], false, "{method}");
        assert_layer_error(&response["body"]["data"]);
    }
    // Closed, cleanly and with a reason: a frame over the limit.
    ws.send_text(format!(
        "{{\"type\": \"request\", \"body\": {{\"pad\": \"{}\"}}}}",
        "x".repeat(16 * 1024)
    ))
    .await;
    assert_eq!(ws.closed_with().await, Some(1009));
    // And a binary frame.
    let mut binary = emulator.ws(&alice).await;
    binary.stream.send_binary_frame().await;
    assert_eq!(binary.closed_with().await, Some(1003));
    // Everyone else is still served.
    let (pong, pushed) = bob_ws
        .request("Presence.subscribe", None, Value::Null)
        .await;
    assert_eq!(pong["body"]["success"], true);
    assert_eq!(emulator.get("/conversations", &alice).await.status(), 200);
    // Bob saw alice's sockets come and go, and nothing else.
    assert!(
        pushed
            .iter()
            .all(|p| p["body"]["object"]["type"] == "Identity"),
        "a refused packet pushed something: {pushed:?}"
    );
    assert!(
        bob_ws
            .next_frame(Duration::from_millis(100))
            .await
            .is_none()
    );
    assert_eq!(
        everything_seen_by(&emulator, &alice).await,
        before,
        "refused packets changed something"
    );
}

trait SendBinary {
    async fn send_binary_frame(&mut self);
}

impl SendBinary
    for tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
{
    async fn send_binary_frame(&mut self) {
        use futures_util::SinkExt;
        self.send(Frame::Binary(vec![1, 2, 3].into()))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn deep_or_large_metadata_is_refused_and_changes_nothing() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let c = emulator.conversation(&alice, &["bob"]).await;
    let path = path_of(&c);
    let patch = |property: String, value: Value| {
        emulator.send(
            Method::PATCH,
            &path,
            &alice,
            Some(json!([{"operation": "set", "property": property, "value": value}])),
        )
    };
    let metadata = || async {
        let c: Value = emulator.get(&path, &alice).await.json().await.unwrap();
        c["metadata"].clone()
    };
    // One request with a path 100 000 keys deep once overflowed the stack of the process.
    let deep = format!("metadata.{}a", "a.".repeat(100_000));
    let response = patch(deep, json!("x")).await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], "invalid_property");
    assert_eq!(body["data"]["property"], "metadata");
    // Sixteen levels are fine, seventeen are not, however they are spread.
    let sixteen = vec!["k"; 16].join(".");
    assert_eq!(
        patch(format!("metadata.{sixteen}"), json!("v"))
            .await
            .status(),
        204
    );
    assert_eq!(
        patch(format!("metadata.{sixteen}.k"), json!("v"))
            .await
            .status(),
        422
    );
    assert_eq!(
        patch(format!("metadata.{sixteen}"), json!({"k": "v"}))
            .await
            .status(),
        422
    );
    let created = emulator
        .post(
            "/conversations",
            &alice,
            json!({"participants": ["bob"], "metadata": (0..17).fold(json!("v"), |v, _| json!({"k": v}))}),
        )
        .await;
    assert_eq!(created.status(), 422);
    // At most 16 KiB of metadata per conversation.
    assert_eq!(patch("metadata".into(), json!({})).await.status(), 204);
    for i in 0..4 {
        let response = patch(format!("metadata.v{i}"), json!("x".repeat(4000))).await;
        assert_eq!(response.status(), 204, "value {i}");
    }
    let before = metadata().await;
    let over = patch("metadata.v4".into(), json!("x".repeat(4000))).await;
    assert_eq!(over.status(), 422);
    assert_layer_error(&over.json().await.unwrap());
    assert_eq!(metadata().await, before, "a refused patch changes nothing");
    assert_eq!(before.as_object().unwrap().len(), 4);
}

/// `(id, code)` of a refusal.
async fn refusal(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_layer_error(&body);
    assert_eq!(body["code"], 7);
    (status, body["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn what_an_app_holds_is_capped_with_layer_errors_that_change_nothing() {
    let emulator = spawn_with(|s| {
        s.max_identities = 4;
        s.max_conversations = 2;
        s.max_messages = 3;
    })
    .await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    // Identities, auto-provisioned ones included: alice, bob, carol, dave.
    assert_eq!(
        emulator.get("/identities/carol", &alice).await.status(),
        200
    );
    assert_eq!(emulator.get("/identities/dave", &alice).await.status(), 200);
    let full = emulator.get("/identities/eve", &alice).await;
    assert_eq!(refusal(full).await, (429, "rate_limit_exceeded".into()));
    assert_eq!(
        emulator.get("/identities/carol", &alice).await.status(),
        200,
        "known ones still load"
    );
    let with_new = emulator
        .post(
            "/conversations",
            &alice,
            json!({"participants": ["bob", "eve", "frank"]}),
        )
        .await;
    assert_eq!(refusal(with_new).await.0, 429);
    // Conversations: two, then refused over REST and over the socket alike.
    let c = emulator.conversation(&alice, &["bob"]).await;
    emulator.conversation(&alice, &["carol"]).await;
    let third = emulator
        .post("/conversations", &alice, json!({"participants": ["dave"]}))
        .await;
    assert_eq!(refusal(third).await.0, 429);
    let mut ws = emulator.ws(&alice).await;
    let (response, _) = ws
        .request(
            "Conversation.create",
            None,
            json!({"participants": ["layer:///identities/dave"]}),
        )
        .await;
    assert_eq!(response["body"]["success"], false);
    assert_eq!(response["body"]["data"]["id"], "rate_limit_exceeded");
    let listed: Vec<Value> = emulator
        .get("/conversations", &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 2, "the refused ones were not made");
    // Messages: three, then refused; deleting one makes room.
    let first = emulator.message(&alice, &c, "1").await;
    emulator.message(&bob, &c, "2").await;
    emulator.message(&alice, &c, "3").await;
    let fourth = emulator
        .post(
            &format!("{}/messages", path_of(&c)),
            &alice,
            json!({"parts": [{"mime_type": "text/plain", "body": "4"}]}),
        )
        .await;
    assert_eq!(refusal(fourth).await.0, 429);
    let count = |c: Value| c["total_message_count"].clone();
    assert_eq!(
        count(
            emulator
                .get(&path_of(&c), &alice)
                .await
                .json()
                .await
                .unwrap()
        ),
        3
    );
    let deleted = emulator.delete_for_everyone(&alice, &first).await;
    assert_eq!(deleted.status(), 204);
    emulator.message(&alice, &c, "4").await;
}

/// What a `max_message_bytes` refusal says: the bytes the app holds, and the size of the
/// message refused.
async fn bytes_refusal(response: reqwest::Response) -> (u64, u64) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (status, body["id"].as_str()),
        (429, Some("rate_limit_exceeded")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    let numbers: Vec<u64> = message
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(numbers.len(), 3, "held, refused, the cap: {message}");
    (numbers[0], numbers[1])
}

#[tokio::test]
async fn the_bytes_of_an_app_s_messages_are_capped() {
    let emulator = spawn_with(|s| s.max_message_bytes = 5_000).await;
    let alice = emulator.login("alice").await;
    let c = emulator.conversation(&alice, &["bob"]).await;
    let text = "x".repeat(2_000);
    let messages = format!("{}/messages", path_of(&c));
    let body = json!({"parts": [{"mime_type": "text/plain", "body": text}]});
    let first = emulator.message(&alice, &c, &text).await;
    emulator.message(&alice, &c, &text).await;
    // Three alike: the app holds two of the size of the third.
    let (held, size) = bytes_refusal(emulator.post(&messages, &alice, body.clone()).await).await;
    assert_eq!(held, 2 * size);
    let conversation: Value = emulator
        .get(&path_of(&c), &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(conversation["total_message_count"], 2);
    // Someone joining adds statuses to the messages, so each new one is larger; deleting an
    // old one still gives back exactly what it counted for when it was sent.
    let join = emulator
        .send(
            Method::PATCH,
            &path_of(&c),
            &alice,
            Some(json!([{"operation": "add", "property": "participants", "id": "layer:///identities/carol"}])),
        )
        .await;
    assert_eq!(join.status(), 204);
    let deleted = emulator.delete_for_everyone(&alice, &first).await;
    assert_eq!(deleted.status(), 204);
    emulator.message(&alice, &c, &text).await;
    let (held_now, larger) = bytes_refusal(emulator.post(&messages, &alice, body).await).await;
    assert!(larger > size, "{larger} > {size}");
    assert_eq!(held_now, size + larger, "one old message and one new one");
}

#[tokio::test]
async fn explicit_follows_are_capped_per_user() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    for i in 0..1_000 {
        let path = format!("/following/users/user{i}");
        assert_eq!(
            emulator
                .send(Method::PUT, &path, &alice, None)
                .await
                .status(),
            204
        );
    }
    let over = emulator
        .send(Method::PUT, "/following/users/one-more", &alice, None)
        .await;
    assert_eq!(refusal(over).await, (429, "rate_limit_exceeded".into()));
    let again = emulator
        .send(Method::PUT, "/following/users/user0", &alice, None)
        .await;
    assert_eq!(
        again.status(),
        204,
        "following someone followed already adds nothing"
    );
    let followed = emulator.get("/identities?page_size=1", &alice).await;
    assert_eq!(
        followed.headers()["layer-count"],
        "1000",
        "the refused follow was not made"
    );
}

#[tokio::test]
async fn a_huge_participant_list_is_refused_promptly() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let c = emulator.conversation(&alice, &["bob"]).await;
    // As many distinct user IDs as fit in one body: some 30 000.
    let users: Vec<String> = (0..30_000).map(|i| i.to_string()).collect();
    let requests = [
        (
            Method::POST,
            "/conversations".to_owned(),
            json!({"participants": users}),
        ),
        (
            Method::PATCH,
            path_of(&c),
            json!([{"operation": "set", "property": "participants", "value": users}]),
        ),
    ];
    for (method, path, body) in requests {
        let started = std::time::Instant::now();
        let response = emulator
            .send(method.clone(), &path, &alice, Some(body))
            .await;
        let elapsed = started.elapsed();
        assert_eq!(response.status(), 422, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_layer_error(&body);
        assert_eq!(body["data"]["property"], "participants");
        // Sorting out duplicates pairwise took seconds here, with the app's lock held.
        assert!(
            elapsed < Duration::from_secs(2),
            "{method} {path}: {elapsed:?}"
        );
    }
    let unchanged: Value = emulator
        .get(&path_of(&c), &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged["participants"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn requests_the_http_parser_refuses_get_layer_s_error_shape() {
    let emulator = spawn_emulator().await;
    let addr: std::net::SocketAddr = emulator.url["http://".len()..].parse().unwrap();
    let long = "a".repeat(140_000);
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "garbage request line",
            "NOT HTTP AT ALL\r\n\r\n".to_owned(),
            400,
        ),
        (
            "invalid header name",
            "GET /nonces HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n".to_owned(),
            400,
        ),
        (
            "URI too long",
            format!("GET /{long} HTTP/1.1\r\nHost: x\r\n\r\n"),
            431,
        ),
        (
            "header too large",
            format!("GET /nonces HTTP/1.1\r\nHost: x\r\nX-Big: {long}\r\n\r\n"),
            431,
        ),
        // (Broken chunked framing reaches the route, whose body extractor answers it.)
    ];
    for (name, request, status) in cases {
        let responses = crate::bad_input::raw_exchange(addr, request.as_bytes()).await;
        assert!(!responses.is_empty(), "{name}: no response");
        for (got, body) in &responses {
            assert_eq!(*got, status, "{name}");
            let body: Value = serde_json::from_slice(body)
                .unwrap_or_else(|_| panic!("{name}: {}", String::from_utf8_lossy(body)));
            assert_layer_error(&body);
            assert_eq!(body["id"], "invalid_request", "{name}: {body}");
            assert!(body["message"].as_str().unwrap().len() > 20, "{name}");
            assert!(
                body["data"]["request_id"]
                    .as_str()
                    .is_some_and(|id| !id.is_empty()),
                "{name}: {body}"
            );
        }
    }
    // Behind a good request on the same connection: that one is answered, then the refusal.
    let pipelined = crate::bad_input::raw_exchange(
        addr,
        b"POST /nonces HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n\
          GET /nonces HTTP/1.1\r\nBad Header: y\r\n\r\n",
    )
    .await;
    let statuses: Vec<u16> = pipelined.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [201, 400]);
    let refusal: Value = serde_json::from_slice(&pipelined[1].1).unwrap();
    assert_eq!(refusal["id"], "invalid_request", "{refusal}");
    // The emulator still serves.
    assert!(!emulator.nonce().await.is_empty());
}

#[tokio::test]
async fn uploaded_content_that_imitates_a_refusal_is_downloaded_byte_for_byte() {
    // The parser's refusals are rewritten on their way out; uploaded bytes shaped like one
    // must not be, or one user's upload could rewrite what another downloads.
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let imitation = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    let content = emulator.upload_content(&alice, imitation.to_vec()).await;
    let download = emulator.download_url(&alice, &content).await;
    for _ in 0..2 {
        // Twice: on a fresh connection, then on the kept-alive one.
        let response = emulator.http.get(&download).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(&response.bytes().await.unwrap()[..], &imitation[..]);
    }
}
