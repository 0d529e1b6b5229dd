//! REST: object shapes, lists and paging, Layer-Patch, deletes, receipts, rich content,
//! CORS and the XDK's path prefix.

use reqwest::Method;
use serde_json::{Value, json};

use super::helpers::*;

#[tokio::test]
async fn a_conversation_has_absolute_urls_and_per_viewer_counts() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let conversation = emulator
        .conversation(&alice, &["layer:///identities/bob"])
        .await;
    let id = conversation["id"].as_str().unwrap();
    assert!(id.starts_with("layer:///conversations/"));
    assert_eq!(
        conversation["url"],
        format!("{}/conversations/{}", emulator.url, &id[23..])
    );
    let participants: Vec<&str> = conversation["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(participants, ["bob", "alice"]);
    let message = emulator.message(&alice, &conversation, "Hello Bob").await;
    assert_eq!(message["position"], 1);
    assert_eq!(message["conversation"]["id"], id);
    assert_eq!(message["is_unread"], false);
    assert_eq!(
        message["recipient_status"]["layer:///identities/alice"],
        "read"
    );
    assert_eq!(
        message["recipient_status"]["layer:///identities/bob"],
        "sent"
    );
    assert_eq!(
        message["parts"][0]["id"],
        format!("{}/parts/0", message["id"].as_str().unwrap())
    );
    let for_bob: Value = emulator
        .get(&path_of(&conversation), &bob)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(for_bob["unread_message_count"], 1);
    assert_eq!(for_bob["last_message"]["is_unread"], true);
    assert_eq!(for_bob["last_message"]["parts"][0]["body"], "Hello Bob");
    let for_alice: Value = emulator
        .get(&path_of(&conversation), &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(for_alice["unread_message_count"], 0);
}

#[tokio::test]
async fn lists_send_layer_count_and_page_with_from_id() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let conversation = emulator.conversation(&alice, &["bob"]).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let m = emulator
            .message(&alice, &conversation, &format!("m{i}"))
            .await;
        ids.push(m["id"].as_str().unwrap().to_owned());
    }
    let messages_path = format!("{}/messages", path_of(&conversation));
    let first = emulator
        .get(&format!("{messages_path}?page_size=2"), &alice)
        .await;
    assert_eq!(first.headers()["layer-count"], "5");
    let first: Vec<Value> = first.json().await.unwrap();
    let positions: Vec<i64> = first
        .iter()
        .map(|m| m["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, [5, 4], "newest first");
    let next: Vec<Value> = emulator
        .get(
            &format!("{messages_path}?page_size=2&from_id={}", ids[3]),
            &alice,
        )
        .await
        .json()
        .await
        .unwrap();
    let positions: Vec<i64> = next
        .iter()
        .map(|m| m["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, [3, 2]);

    emulator.conversation(&alice, &["carol"]).await;
    emulator.message(&alice, &conversation, "newest").await;
    let list = emulator
        .get("/conversations?sort_by=last_message&page_size=1", &alice)
        .await;
    assert_eq!(list.headers()["layer-count"], "2");
    let list: Vec<Value> = list.json().await.unwrap();
    assert_eq!(
        list[0]["id"], conversation["id"],
        "the conversation with the last message first"
    );
    let bad = emulator.get("/conversations?page_size=lots", &alice).await;
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn distinct_conversations_are_found_again_or_conflict() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let body = json!({"participants": ["bob"], "distinct": true, "metadata": {"title": "a"}});
    let created = emulator.post("/conversations", &alice, body.clone()).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let again = emulator
        .post(
            "/conversations",
            &alice,
            json!({"participants": ["bob"], "distinct": true}),
        )
        .await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], created["id"]);
    let conflict = emulator
        .post(
            "/conversations",
            &alice,
            json!({"participants": ["bob"], "distinct": true, "metadata": {"title": "b"}}),
        )
        .await;
    assert_eq!(conflict.status(), 409);
    let conflict: Value = conflict.json().await.unwrap();
    assert_eq!(conflict["id"], "conflict");
    assert_eq!(conflict["data"]["id"], created["id"]);
    let reused = emulator
        .post(
            "/conversations",
            &alice,
            json!({"participants": ["carol"], "id": created["id"]}),
        )
        .await;
    assert_eq!(reused.status(), 409);
    assert_eq!(reused.json::<Value>().await.unwrap()["id"], "id_in_use");
}

#[tokio::test]
async fn participant_limits_are_enforced_and_small_conversations_allowed() {
    let emulator = spawn_with(|s| s.max_participants = 3).await;
    let alice = emulator.login("alice").await;
    let alone = emulator
        .post("/conversations", &alice, json!({"participants": []}))
        .await;
    assert_eq!(alone.status(), 201);
    let crowd = emulator
        .post(
            "/conversations",
            &alice,
            json!({"participants": ["b", "c", "d"]}),
        )
        .await;
    assert_eq!(crowd.status(), 422);
    let body: Value = crowd.json().await.unwrap();
    assert_eq!(body["data"]["property"], "participants");
}

#[tokio::test]
async fn layer_patch_changes_participants_and_metadata() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let carol = emulator.login("carol").await;
    let conversation = emulator.conversation(&alice, &["bob"]).await;
    let patch = json!([
        {"operation": "add", "property": "participants", "id": "layer:///identities/carol"},
        {"operation": "remove", "property": "participants", "value": "bob"},
        {"operation": "set", "property": "metadata.a.b", "value": "42"},
    ]);
    let response = emulator
        .http
        .patch(format!("{}{}", emulator.url, path_of(&conversation)))
        .header("authorization", auth(&alice))
        .header("content-type", "application/vnd.layer-patch+json")
        .body(patch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let seen_by_carol: Value = emulator
        .get(&path_of(&conversation), &carol)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen_by_carol["metadata"], json!({"a": {"b": "42"}}));
    let users: Vec<&str> = seen_by_carol["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["alice", "carol"]);
    let bob = emulator.login("bob").await;
    assert_eq!(
        emulator.get(&path_of(&conversation), &bob).await.status(),
        403,
        "bob left"
    );
    let bad = emulator
        .send(
            Method::PATCH,
            &path_of(&conversation),
            &alice,
            Some(json!([{"operation": "set", "property": "created_at", "value": 1}])),
        )
        .await;
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn deleting_a_conversation_works_in_all_three_modes() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    // my_devices without leaving: hidden until the next message.
    let c = emulator.conversation(&alice, &["bob"]).await;
    emulator.message(&alice, &c, "one").await;
    let path = path_of(&c);
    let hide = emulator
        .send(
            Method::DELETE,
            &format!("{path}?mode=my_devices&leave=false"),
            &bob,
            None,
        )
        .await;
    assert_eq!(hide.status(), 204);
    let listed: Vec<Value> = emulator
        .get("/conversations", &bob)
        .await
        .json()
        .await
        .unwrap();
    assert!(listed.is_empty());
    emulator.message(&alice, &c, "two").await;
    let listed: Vec<Value> = emulator
        .get("/conversations", &bob)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let messages: Vec<Value> = emulator
        .get(&format!("{path}/messages"), &bob)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        messages.len(),
        1,
        "the messages before the delete stay gone for bob"
    );
    // leave=true: bob is no longer a participant.
    let leave = emulator
        .send(
            Method::DELETE,
            &format!("{path}?mode=my_devices&leave=true"),
            &bob,
            None,
        )
        .await;
    assert_eq!(leave.status(), 204);
    assert_eq!(emulator.get(&path, &bob).await.status(), 403);
    let no_mode = emulator.send(Method::DELETE, &path, &alice, None).await;
    assert_eq!(no_mode.status(), 422);
    assert_eq!(
        no_mode.json::<Value>().await.unwrap()["id"],
        "missing_property"
    );
    // all_participants: gone for everyone.
    let gone = emulator.delete_for_everyone(&alice, &c).await;
    assert_eq!(gone.status(), 204);
    assert_eq!(emulator.get(&path, &alice).await.status(), 404);
}

#[tokio::test]
async fn receipts_only_move_up_and_mark_all_read_reads_everything() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let c = emulator.conversation(&alice, &["bob"]).await;
    let m1 = emulator.message(&alice, &c, "one").await;
    emulator.message(&alice, &c, "two").await;
    let receipts = format!("{}/receipts", path_of(&m1));
    assert_eq!(
        emulator
            .post(&receipts, &bob, json!({"type": "read"}))
            .await
            .status(),
        204
    );
    assert_eq!(
        emulator
            .post(&receipts, &bob, json!({"type": "delivery"}))
            .await
            .status(),
        204
    );
    let m1_now: Value = emulator
        .get(&path_of(&m1), &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        m1_now["recipient_status"]["layer:///identities/bob"], "read",
        "never back down"
    );
    let c_now: Value = emulator.get(&path_of(&c), &bob).await.json().await.unwrap();
    assert_eq!(c_now["unread_message_count"], 1);
    let bad = emulator
        .post(&receipts, &bob, json!({"type": "seen"}))
        .await;
    assert_eq!(bad.status(), 422);
    let mark = emulator
        .post(
            &format!("{}/mark_all_read", path_of(&c)),
            &bob,
            json!({"position": null}),
        )
        .await;
    assert_eq!(mark.status(), 204);
    let c_now: Value = emulator.get(&path_of(&c), &bob).await.json().await.unwrap();
    assert_eq!(c_now["unread_message_count"], 0);
}

#[tokio::test]
async fn message_rules_and_notifications_are_kept() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let c = emulator.conversation(&alice, &["bob"]).await;
    let path = format!("{}/messages", path_of(&c));
    let no_slash = emulator
        .post(
            &path,
            &alice,
            json!({"parts": [{"mime_type": "text", "body": "x"}]}),
        )
        .await;
    assert_eq!(no_slash.status(), 422);
    // Inline bodies: at most 2048 UTF-16 code units, as the SDKs measure `body.length`.
    for (body, status) in [
        ("x".repeat(2049), 422),
        ("x".repeat(2048), 201),
        ("é".repeat(2048), 201),
        ("é".repeat(2049), 422),
    ] {
        let response = emulator
            .post(
                &path,
                &alice,
                json!({"parts": [{"mime_type": "text/plain", "body": body}]}),
            )
            .await;
        assert_eq!(
            response.status(),
            status,
            "{} code units",
            body.chars().count()
        );
    }
    let with_push = emulator
        .post(
            &path,
            &alice,
            json!({
                "parts": [{"mime_type": "text/plain", "body": "hi"}],
                "notification": {"title": "T", "text": "hi", "sound": "ding.aiff"},
            }),
        )
        .await;
    assert_eq!(with_push.status(), 201);
    let message: Value = with_push.json().await.unwrap();
    assert_eq!(message["notification"]["sound"], "ding.aiff");
    let got: Value = emulator
        .get(&path_of(&message), &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["notification"]["title"], "T");
}

#[tokio::test]
async fn rich_content_goes_up_and_comes_back_through_the_emulator() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let c = emulator.conversation(&alice, &["bob"]).await;
    let bytes = "x".repeat(3000);
    let created = emulator
        .http
        .post(format!("{}/content", emulator.url))
        .header("authorization", auth(&alice))
        .header("upload-content-type", "text/plain")
        .header("upload-content-length", "3000")
        .header("upload-origin", "")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let content: Value = created.json().await.unwrap();
    let upload = content["upload_url"].as_str().unwrap();
    assert!(upload.starts_with(&emulator.url));
    assert!(content["download_url"].is_null());
    let put = emulator
        .http
        .put(upload)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    let message = emulator
        .post(&format!("{}/messages", path_of(&c)), &alice, json!({
            "parts": [{"mime_type": "text/plain", "content": {"id": content["id"], "size": 3000}}],
        }))
        .await;
    assert_eq!(message.status(), 201);
    let message: Value = message.json().await.unwrap();
    let part = &message["parts"][0];
    assert_eq!(part["content"]["size"], 3000);
    assert!(part.get("body").is_none());
    let for_bob: Value = emulator
        .get(&path_of(&message), &bob)
        .await
        .json()
        .await
        .unwrap();
    let download = for_bob["parts"][0]["content"]["download_url"]
        .as_str()
        .unwrap();
    let fetched = emulator.http.get(download).send().await.unwrap();
    assert_eq!(fetched.headers()["content-type"], "text/plain");
    assert_eq!(fetched.text().await.unwrap(), bytes);
    let refresh = for_bob["parts"][0]["content"]["refresh_url"]
        .as_str()
        .unwrap();
    let refreshed: Value = emulator
        .http
        .get(refresh)
        .header("authorization", auth(&bob))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refreshed["download_url"], download);
    // Once attached, the upload URL cannot replace the bytes.
    assert_eq!(
        emulator
            .http
            .put(upload)
            .body("y")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}

#[tokio::test]
async fn the_xdk_absolute_url_prefix_is_stripped() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let prefixed = format!("/{}/identities/bob", emulator.url);
    let response = emulator.get(&prefixed, &alice).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["user_id"], "bob");
}

#[tokio::test]
async fn user_ids_with_reserved_characters_round_trip() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let response = emulator
        .get("/identities/fred.flinstone%40x.com%2Fa%20b", &alice)
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user_id"], "fred.flinstone@x.com/a b");
    assert_eq!(
        body["id"],
        "layer:///identities/fred.flinstone%40x.com%2Fa%20b"
    );
    // `*` is one of the characters the SDK's strictEncodeURI leaves as it is.
    let star: Value = emulator
        .get("/identities/star*user%21", &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(star["user_id"], "star*user!");
    assert_eq!(star["id"], "layer:///identities/star*user%21");
    assert_eq!(
        star["url"],
        format!("{}/identities/star*user%21", emulator.url)
    );
}

#[tokio::test]
async fn browsers_get_cors_headers_naming_their_origin() {
    let emulator = spawn_emulator().await;
    let preflight = emulator
        .http
        .request(Method::OPTIONS, format!("{}/conversations", emulator.url))
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, layer-xdk-version, client-id",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    assert_eq!(
        preflight.headers()["access-control-allow-credentials"],
        "true"
    );
    let allowed = |name: &str| {
        preflight.headers()[name]
            .to_str()
            .unwrap()
            .to_lowercase()
            .split(',')
            .map(|h| h.trim().to_owned())
            .collect::<Vec<_>>()
    };
    let methods = allowed("access-control-allow-methods");
    for method in ["get", "post", "put", "patch", "delete", "head", "options"] {
        assert!(
            methods.iter().any(|m| m == method),
            "{method} in {methods:?}"
        );
    }
    // Every header the SDKs send, the rich-content upload's included (§B.0 item 7).
    let headers = allowed("access-control-allow-headers");
    for header in [
        "accept",
        "authorization",
        "content-type",
        "client-id",
        "layer-xdk-version",
        "upload-content-type",
        "upload-content-length",
        "upload-origin",
        "if-none-match",
    ] {
        assert!(
            headers.iter().any(|h| h == header),
            "{header} in {headers:?}"
        );
    }
    // A header the SDKs never send is refused, in Layer's shape.
    let refused = emulator
        .http
        .request(Method::OPTIONS, format!("{}/conversations", emulator.url))
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, x-made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert!(
        refused.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["id"], "invalid_request");
    assert_eq!(body["code"], 10);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("upload-content-type"),
        "{body}"
    );
    let alice = emulator.login("alice").await;
    let list = emulator
        .http
        .get(format!("{}/conversations", emulator.url))
        .header("origin", "http://app.example")
        .header("authorization", auth(&alice))
        .send()
        .await
        .unwrap();
    assert_eq!(
        list.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    let exposed = list.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("layer-count"), "{exposed}");
    assert_eq!(list.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn a_participant_added_later_counts_only_what_came_after_and_can_read_it_all() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let carol = emulator.login("carol").await;
    let c = emulator.conversation(&alice, &["bob"]).await;
    let path = path_of(&c);
    emulator.message(&alice, &c, "before carol").await;
    emulator.message(&alice, &c, "still before carol").await;
    let participants = |operation: &str| {
        emulator.send(
            Method::PATCH,
            &path,
            &alice,
            Some(json!([{"operation": operation, "property": "participants", "id": "layer:///identities/carol"}])),
        )
    };
    // What carol's SDK reads: the count and the flags must agree, message by message.
    let carol_sees = || async {
        let conversation: Value = emulator.get(&path, &carol).await.json().await.unwrap();
        let messages: Vec<Value> = emulator
            .get(&format!("{path}/messages"), &carol)
            .await
            .json()
            .await
            .unwrap();
        let unread = messages.iter().filter(|m| m["is_unread"] == true).count();
        assert_eq!(
            conversation["unread_message_count"], unread,
            "unread_message_count and is_unread disagree: {messages:?}"
        );
        (unread, messages)
    };
    assert_eq!(participants("add").await.status(), 204);
    let (unread, messages) = carol_sees().await;
    assert_eq!(unread, 0, "history from before she joined is not news");
    assert!(
        messages
            .iter()
            .all(|m| m["recipient_status"]["layer:///identities/carol"] == "read"),
        "every participant has a status: {messages:?}"
    );
    let m3 = emulator.message(&alice, &c, "welcome, carol").await;
    assert_eq!(carol_sees().await.0, 1);
    let read = emulator
        .post(
            &format!("{}/receipts", path_of(&m3)),
            &carol,
            json!({"type": "read"}),
        )
        .await;
    assert_eq!(read.status(), 204);
    assert_eq!(carol_sees().await.0, 0, "her read receipt counts");

    // Removed, a message goes by without her, and she is added again.
    emulator.message(&alice, &c, "unread when she leaves").await;
    assert_eq!(participants("remove").await.status(), 204);
    emulator.message(&alice, &c, "while carol was away").await;
    assert_eq!(participants("add").await.status(), 204);
    assert_eq!(
        carol_sees().await.0,
        1,
        "only what she missed as a participant"
    );
    emulator.message(&alice, &c, "welcome back").await;
    assert_eq!(carol_sees().await.0, 2);
    let mark = emulator
        .post(
            &format!("{path}/mark_all_read"),
            &carol,
            json!({"position": null}),
        )
        .await;
    assert_eq!(mark.status(), 204);
    assert_eq!(carol_sees().await.0, 0, "mark_all_read reaches zero");
}

#[tokio::test]
async fn the_identity_list_holds_the_identities_the_caller_follows_newest_first() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    emulator.login("carol").await;
    emulator.conversation(&alice, &["bob"]).await;
    assert_eq!(
        emulator
            .send(Method::PUT, "/following/users/dave", &alice, None)
            .await
            .status(),
        204
    );
    let list = |session: String, query: &'static str| {
        let emulator = &emulator;
        async move {
            let response = emulator.get(&format!("/identities{query}"), &session).await;
            assert_eq!(response.status(), 200);
            let count = response.headers()["layer-count"]
                .to_str()
                .unwrap()
                .to_owned();
            let body: Vec<Value> = response.json().await.unwrap();
            assert!(
                body.iter().all(|i| i["metadata"].is_object()),
                "full identities"
            );
            let users: Vec<String> = body
                .iter()
                .map(|i| i["user_id"].as_str().unwrap().to_owned())
                .collect();
            (count, users)
        }
    };
    // Not carol (no conversation with her), not alice herself; dave was provisioned last.
    assert_eq!(
        list(alice.clone(), "").await,
        ("2".into(), vec!["dave".into(), "bob".into()])
    );
    assert_eq!(list(alice.clone(), "?page_size=1").await.1, ["dave"]);
    assert_eq!(list(alice.clone(), "?from_id=dave").await.1, ["bob"]);
    assert_eq!(
        list(alice.clone(), "?from_id=layer:///identities/dave")
            .await
            .1,
        ["bob"]
    );
    assert_eq!(
        list(bob.clone(), "").await.1,
        ["alice"],
        "follows go one way"
    );
    let unfollow = emulator
        .send(Method::DELETE, "/following/users/dave", &alice, None)
        .await;
    assert_eq!(unfollow.status(), 204);
    assert_eq!(list(alice.clone(), "").await.1, ["bob"]);
}

/// Reserves, uploads and sends `size` bytes of content in a message to `conversation`;
/// the message and the content's download URL.
async fn send_content(
    emulator: &Emulator,
    session: &str,
    conversation: &Value,
    size: usize,
) -> (Value, String) {
    let content = emulator.upload_content(session, vec![7u8; size]).await;
    let message: Value = emulator
        .post(
            &format!("{}/messages", path_of(conversation)),
            session,
            json!({"parts": [{"mime_type": "application/octet-stream", "content": {"id": content["id"], "size": size}}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let download = message["parts"][0]["content"]["download_url"]
        .as_str()
        .unwrap()
        .to_owned();
    (message, download)
}

#[tokio::test]
async fn rich_content_is_capped_per_user_and_per_app_and_freed_with_its_message() {
    let emulator = spawn_with(|s| {
        s.max_content_bytes = 8 * 1024;
        s.max_content_bytes_per_user = 16 * 1024;
        s.max_content_bytes_per_app = 24 * 1024;
    })
    .await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let c = emulator.conversation(&alice, &["bob"]).await;
    let (message, download) = send_content(&emulator, &alice, &c, 8 * 1024).await;
    let fetched = emulator.http.get(&download).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["x-content-type-options"], "nosniff");
    assert_eq!(fetched.headers()["content-disposition"], "attachment");
    assert_eq!(fetched.bytes().await.unwrap().len(), 8 * 1024);
    // A reservation counts as soon as it is made, uploaded or not.
    assert_eq!(
        emulator.reserve_content(&alice, 8 * 1024).await.status(),
        201
    );
    let over = emulator.reserve_content(&alice, 1).await;
    assert_eq!(over.status(), 429);
    let body: Value = over.json().await.unwrap();
    assert_eq!(
        (body["id"].as_str(), body["code"].as_u64()),
        (Some("rate_limit_exceeded"), Some(7))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("max_content_bytes_per_user"),
        "{body}"
    );
    assert_eq!(emulator.reserve_content(&bob, 8 * 1024).await.status(), 201);
    let full = emulator.reserve_content(&bob, 1).await;
    assert_eq!(full.status(), 429);
    assert!(
        full.text()
            .await
            .unwrap()
            .contains("max_content_bytes_per_app")
    );
    // Deleting the message for everyone frees its content.
    let deleted = emulator.delete_for_everyone(&alice, &message).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        emulator.http.get(&download).send().await.unwrap().status(),
        404
    );
    // So does deleting the conversation for everyone.
    let (_, download) = send_content(&emulator, &bob, &c, 8 * 1024).await;
    let gone = emulator.delete_for_everyone(&alice, &c).await;
    assert_eq!(gone.status(), 204);
    assert_eq!(
        emulator.http.get(&download).send().await.unwrap().status(),
        404
    );
    assert_eq!(emulator.reserve_content(&bob, 8 * 1024).await.status(), 201);
}

#[tokio::test]
async fn content_no_message_uses_expires() {
    let emulator = spawn_with(|s| {
        s.content_upload_ttl_secs = 60;
        s.max_content_bytes = 8 * 1024;
        s.max_content_bytes_per_user = 8 * 1024;
    })
    .await;
    let alice = emulator.login("alice").await;
    let content: Value = emulator
        .reserve_content(&alice, 8 * 1024)
        .await
        .json()
        .await
        .unwrap();
    let upload = content["upload_url"].as_str().unwrap().to_owned();
    assert_eq!(
        emulator.reserve_content(&alice, 8 * 1024).await.status(),
        429
    );
    let put = emulator
        .http
        .put(&upload)
        .body(vec![0u8; 8 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200, "uploading never attaches it");
    // Refused as uploaded already while the content lives…
    let again = |emulator: &Emulator| emulator.http.put(&upload).body(vec![0u8; 8 * 1024]).send();
    assert_eq!(again(&emulator).await.unwrap().status(), 403);
    emulator.advance_clock_ms(30_000).await;
    assert_eq!(
        again(&emulator).await.unwrap().status(),
        403,
        "not yet expired"
    );
    // …and unknown once it expired.
    emulator.advance_clock_ms(30_000).await;
    assert_eq!(again(&emulator).await.unwrap().status(), 404);
    assert_eq!(
        emulator.reserve_content(&alice, 8 * 1024).await.status(),
        201,
        "its room was freed"
    );
}

#[tokio::test]
async fn an_upload_url_takes_one_upload_and_its_content_is_freed_exactly() {
    let emulator = spawn_with(|s| {
        s.max_content_bytes = 8 * 1024;
        s.max_content_bytes_per_user = 16 * 1024;
    })
    .await;
    let alice = emulator.login("alice").await;
    let c = emulator.conversation(&alice, &[]).await;
    // Undeclared: reserved at the largest upload, then counted for what landed.
    let content: Value = emulator
        .reserve_content_of_unknown_size(&alice)
        .await
        .json()
        .await
        .unwrap();
    let upload = content["upload_url"].as_str().unwrap();
    let put = |body: Vec<u8>| emulator.http.put(upload).body(body).send();
    assert_eq!(put(vec![1; 100]).await.unwrap().status(), 200);
    // A second upload to the same URL, larger this time, is refused and changes nothing.
    let again = put(vec![2; 8 * 1024]).await.unwrap();
    assert_eq!(again.status(), 403);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["id"], "access_denied");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("uploaded already"),
        "{body}"
    );
    let message = emulator
        .post(
            &format!("{}/messages", path_of(&c)),
            &alice,
            json!({"parts": [{"mime_type": "application/octet-stream", "content": {"id": content["id"], "size": 100}}]}),
        )
        .await;
    assert_eq!(message.status(), 201);
    let message: Value = message.json().await.unwrap();
    let download = message["parts"][0]["content"]["download_url"]
        .as_str()
        .unwrap();
    let fetched = emulator.http.get(download).send().await.unwrap();
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), &[1u8; 100][..]);
    // Deleting the message gives back exactly what the content counted for: all of it.
    assert_eq!(
        emulator
            .delete_for_everyone(&alice, &message)
            .await
            .status(),
        204
    );
    assert_eq!(emulator.get(&path_of(&message), &alice).await.status(), 404);
    let listed: Vec<Value> = emulator
        .get(&format!("{}/messages", path_of(&c)), &alice)
        .await
        .json()
        .await
        .unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    for _ in 0..2 {
        assert_eq!(
            emulator.reserve_content(&alice, 8 * 1024).await.status(),
            201
        );
    }
    assert_eq!(emulator.reserve_content(&alice, 1).await.status(), 429);
}

#[tokio::test]
async fn a_huge_content_time_to_live_never_expires_content() {
    let emulator = spawn_with(|s| s.content_upload_ttl_secs = u64::MAX).await;
    let alice = emulator.login("alice").await;
    let first: Value = emulator
        .reserve_content(&alice, 3)
        .await
        .json()
        .await
        .unwrap();
    // The second reservation looks for expired content first.
    assert_eq!(emulator.reserve_content(&alice, 3).await.status(), 201);
    let put = emulator
        .http
        .put(first["upload_url"].as_str().unwrap())
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
}

#[tokio::test]
async fn a_conversation_everyone_left_is_forgotten_and_frees_its_room() {
    let emulator = spawn_with(|s| {
        s.max_conversations = 1;
        s.max_messages = 1;
        s.max_content_bytes = 8 * 1024;
        s.max_content_bytes_per_user = 8 * 1024;
    })
    .await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    // Alone in it, alice leaves: nobody can see it, or what it held, again.
    let c = emulator.conversation(&alice, &[]).await;
    let (message, download) = send_content(&emulator, &alice, &c, 8 * 1024).await;
    let full = emulator
        .post("/conversations", &alice, json!({"participants": []}))
        .await;
    assert_eq!(full.status(), 429);
    let leave = emulator
        .send(
            Method::DELETE,
            &format!("{}?mode=my_devices&leave=true", path_of(&c)),
            &alice,
            None,
        )
        .await;
    assert_eq!(leave.status(), 204);
    assert_eq!(emulator.get(&path_of(&c), &alice).await.status(), 404);
    assert_eq!(emulator.get(&path_of(&message), &alice).await.status(), 404);
    assert_eq!(
        emulator.http.get(&download).send().await.unwrap().status(),
        404
    );
    // Its conversation, message and content no longer count.
    let c = emulator.conversation(&alice, &["bob"]).await;
    send_content(&emulator, &alice, &c, 8 * 1024).await;
    // The same when a patch removes everyone; those removed hear they were.
    let mut bob_ws = emulator.ws(&bob).await;
    bob_ws.drain(std::time::Duration::from_millis(100)).await;
    let everyone_out = emulator
        .send(
            Method::PATCH,
            &path_of(&c),
            &alice,
            Some(json!([{"operation": "set", "property": "participants", "value": []}])),
        )
        .await;
    assert_eq!(everyone_out.status(), 204);
    let pushed = bob_ws.drain(std::time::Duration::from_millis(200)).await;
    assert!(
        pushed
            .iter()
            .any(|p| p["body"]["operation"] == "delete" && p["body"]["object"]["id"] == c["id"]),
        "{pushed:?}"
    );
    assert_eq!(emulator.get(&path_of(&c), &alice).await.status(), 404);
    emulator.conversation(&bob, &[]).await;
}
