//! The Platform API's finer points over real HTTP: the whole 3.0 Client API proxy, blocks in
//! both directions, pushes with per-recipient overrides and badges, conversation
//! `significance`, and part `updated_at` and rich content in the 3.0 parts API.

use reqwest::Method;
use serde_json::{Value, json};

use super::helpers::spawn_emulator;
use super::platform::{Server, assert_error, next_change, uuid_of};

const V3: &str = "application/vnd.layer+json; version=3.0";

#[tokio::test]
async fn the_3_0_proxy_runs_every_client_api_request_as_the_user() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let v3 = Server {
        accept: V3,
        ..Server::of(&emulator).await
    };
    // Bob exists (named by a conversation); his SDK watches.
    server.conversation(&["bob", "carol"]).await;
    let bob = emulator.login("bob").await;
    let mut bob_ws = emulator.ws(&bob).await;
    let (_, _) = server
        .json(
            Method::POST,
            "/users/alice/identity",
            Some(json!({"display_name": "Alice"})),
        )
        .await;

    // Not before 3.0, not for a user never named, and the Client API's own bad input.
    let create = json!({"participants": ["bob"], "metadata": {"topic": "a"}});
    let (status, error) = server
        .json(
            Method::POST,
            "/users/alice/conversations",
            Some(create.clone()),
        )
        .await;
    assert_error(status, &error, 404, "invalid_endpoint", 106);
    let v4 = Server {
        accept: "application/vnd.layer+json; version=4.0",
        ..Server::of(&emulator).await
    };
    let (status, error) = v4
        .json(
            Method::POST,
            "/users/alice/conversations",
            Some(create.clone()),
        )
        .await;
    assert_error(status, &error, 406, "invalid_header", 107);
    let (status, error) = v3
        .json(
            Method::POST,
            "/users/nobody/conversations",
            Some(create.clone()),
        )
        .await;
    assert_error(status, &error, 404, "not_found", 102);
    let (status, error) = v3
        .json(
            Method::POST,
            "/users/alice/conversations",
            Some(json!({"participants": "bob"})),
        )
        .await;
    assert_error(status, &error, 422, "invalid_property", 105);

    // Create as Alice: Client API shape, Alice takes part, Bob's socket hears it.
    let (status, created) = v3
        .json(Method::POST, "/users/alice/conversations", Some(create))
        .await;
    assert_eq!(status, 201, "{created}");
    let ids: Vec<&str> = created["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"layer:///identities/alice") && ids.contains(&"layer:///identities/bob"));
    assert!(created["url"].as_str().unwrap().contains("/conversations/"));
    let change = next_change(&mut bob_ws, "create", "Conversation").await;
    assert_eq!(change["object"]["id"], created["id"]);
    let c = uuid_of(&created);

    // Edit it as Alice.
    let (status, text) = v3
        .call(
            Method::PATCH,
            &format!("/users/alice/conversations/{c}"),
            Some(json!([{"operation": "set", "property": "metadata.topic", "value": "b"}])),
        )
        .await;
    assert_eq!((status, text.as_str()), (204, ""));
    let change = next_change(&mut bob_ws, "update", "Conversation").await;
    assert_eq!(change["data"][0]["property"], "metadata.topic");
    let (_, got) = server
        .json(Method::GET, &format!("/conversations/{c}"), None)
        .await;
    assert_eq!(got["metadata"], json!({"topic": "b"}));

    // Identities and following as Bob's SDK would read and set them.
    let (status, alice) = v3
        .json(Method::GET, "/users/bob/identities/alice", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(alice["display_name"], "Alice");
    assert_eq!(alice["id"], "layer:///identities/alice");
    let (status, _) = v3
        .call(Method::PUT, "/users/bob/following/users/dave", None)
        .await;
    assert_eq!(status, 204);
    let (_, followed) = v3.json(Method::GET, "/users/bob/identities", None).await;
    assert!(
        followed
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["user_id"] == "dave"),
        "{followed}"
    );
    let (status, _) = v3
        .call(Method::DELETE, "/users/bob/following/users/dave", None)
        .await;
    assert_eq!(status, 204);

    // Announcements: the server sends, the proxy reads, receipts and deletes as Bob.
    let (status, sent) = server
        .json(
            Method::POST,
            "/announcements",
            Some(json!({"recipients": ["bob"], "sender": {"name": "Admin"},
                        "parts": [{"mime_type": "text/plain", "body": "hello"}]})),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    let a = uuid_of(&sent);
    let response = v3
        .request(Method::GET, "/users/bob/announcements")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["layer-count"], "1");
    let listed: Value = response.json().await.unwrap();
    assert_eq!(listed[0]["id"], sent["id"]);
    let (status, _) = v3
        .call(
            Method::POST,
            &format!("/users/bob/announcements/{a}/receipts"),
            Some(json!({"type": "read"})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, one) = v3
        .json(Method::GET, &format!("/users/bob/announcements/{a}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(one["is_unread"], false);
    let (status, error) = v3
        .json(
            Method::POST,
            &format!("/users/bob/announcements/{a}/receipts"),
            Some(json!({"type": "seen"})),
        )
        .await;
    assert_error(status, &error, 422, "invalid_property", 105);
    let (status, _) = v3
        .call(
            Method::DELETE,
            &format!("/users/bob/announcements/{a}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, listed) = v3.json(Method::GET, "/users/bob/announcements", None).await;
    assert_eq!(listed, json!([]));

    // Rich content reserved as Alice, and push tokens (accepted, forgotten).
    let response = v3
        .request(Method::POST, "/users/alice/content")
        .header("upload-content-type", "text/plain")
        .header("upload-content-length", "3")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let reserved: Value = response.json().await.unwrap();
    let (status, got) = v3
        .json(
            Method::GET,
            &format!("/users/alice/content/{}", uuid_of(&reserved)),
            None,
        )
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["id"], reserved["id"]);
    let (status, _) = v3
        .json(
            Method::GET,
            &format!("/users/bob/content/{}", uuid_of(&reserved)),
            None,
        )
        .await;
    assert_eq!(status, 404, "not Bob's");
    let (status, _) = v3
        .call(
            Method::POST,
            "/users/alice/push_tokens",
            Some(json!({"token": "t", "type": "apns", "device_id": "d"})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = v3
        .call(Method::DELETE, "/users/alice/push_tokens/d", None)
        .await;
    assert_eq!(status, 204);

    // Delete: a bad mode changes nothing; all_participants reaches Bob.
    let (status, error) = v3
        .json(
            Method::DELETE,
            &format!("/users/alice/conversations/{c}?mode=sideways"),
            None,
        )
        .await;
    assert_error(status, &error, 422, "invalid_property", 105);
    let (status, _) = v3
        .call(
            Method::DELETE,
            &format!("/users/alice/conversations/{c}?mode=all_participants"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    next_change(&mut bob_ws, "delete", "Conversation").await;
    let (status, _) = server
        .json(Method::GET, &format!("/conversations/{c}"), None)
        .await;
    assert_eq!(status, 410);

    // The proxy's message delete takes the Client API's modes.
    let conversation = server.conversation(&["alice", "bob"]).await;
    let (_, message) = server
        .send(&conversation, json!({"user_id": "alice"}), "gone")
        .await;
    let m = uuid_of(&message);
    let (status, _) = v3
        .call(
            Method::DELETE,
            &format!("/users/alice/messages/{m}?mode=all_participants"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = server
        .json(Method::GET, &format!("/messages/{m}"), None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn blocks_hide_messages_both_ways_in_one_to_one_and_group_conversations() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let pair = server.conversation(&["alice", "mallory"]).await;
    let group = server.conversation(&["alice", "mallory", "carol"]).await;
    let (status, _) = server
        .call(
            Method::POST,
            "/users/alice/blocks",
            Some(json!({"user_id": "mallory"})),
        )
        .await;
    assert_eq!(status, 204);
    let mallory = emulator.login("mallory").await;
    let mut mallory_ws = emulator.ws(&mallory).await;

    // Alice blocks Mallory: what Alice sends does not reach Mallory either.
    let (status, from_alice) = server.send(&pair, json!({"user_id": "alice"}), "one").await;
    assert_eq!(status, 201, "{from_alice}");
    let (_, in_group) = server
        .send(&group, json!({"user_id": "alice"}), "two")
        .await;
    let (_, from_carol) = server
        .send(&group, json!({"user_id": "carol"}), "three")
        .await;
    let create = next_change(&mut mallory_ws, "create", "Message").await;
    assert_eq!(
        create["object"]["id"], from_carol["id"],
        "the first Mallory hears of"
    );
    for (conversation, want) in [(&pair, 0), (&group, 1)] {
        let path = format!(
            "/users/mallory/conversations/{}/messages",
            uuid_of(conversation)
        );
        let (_, listed) = server.json(Method::GET, &path, None).await;
        assert_eq!(listed.as_array().unwrap().len(), want, "{listed}");
    }
    let (status, _) = server
        .json(
            Method::GET,
            &format!("/users/mallory/messages/{}", uuid_of(&in_group)),
            None,
        )
        .await;
    assert_eq!(status, 404);
    // Mallory's messages do not reach Alice; both still see their own.
    let (_, from_mallory) = server
        .send(&pair, json!({"user_id": "mallory"}), "four")
        .await;
    let (status, _) = server
        .json(
            Method::GET,
            &format!("/users/alice/messages/{}", uuid_of(&from_mallory)),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .json(
            Method::GET,
            &format!("/users/mallory/messages/{}", uuid_of(&from_mallory)),
            None,
        )
        .await;
    assert_eq!(status, 200);
    // Unblocked, new messages pass again; what was hidden stays hidden.
    let (status, _) = server
        .call(Method::DELETE, "/users/alice/blocks/mallory", None)
        .await;
    assert_eq!(status, 204);
    let (_, after) = server
        .send(&pair, json!({"user_id": "alice"}), "five")
        .await;
    for want in [&from_mallory, &after] {
        let create = next_change(&mut mallory_ws, "create", "Message").await;
        assert_eq!(create["object"]["id"], want["id"]);
    }
    let (status, _) = server
        .json(
            Method::GET,
            &format!("/users/mallory/messages/{}", uuid_of(&from_alice)),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn two_users_one_blocking_the_other_do_not_see_each_other_typing() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let group = server.conversation(&["alice", "mallory", "carol"]).await;
    let (status, _) = server
        .call(
            Method::POST,
            "/users/alice/blocks",
            Some(json!({"user_id": "mallory"})),
        )
        .await;
    assert_eq!(status, 204);
    let mut sockets = Vec::new();
    for user in ["alice", "mallory", "carol"] {
        let session = emulator.login(user).await;
        sockets.push(emulator.ws(&session).await);
    }
    let typing = json!({"type": "signal", "body": {"type": "typing_indicator",
                        "object": {"id": group["id"]}, "data": {"action": "started"}}})
    .to_string();
    // Mallory types, then Carol: the first typing Alice sees is Carol's; and the reverse.
    for (typist, watcher) in [(1, 0), (0, 1)] {
        sockets[typist].send_text(typing.clone()).await;
        // A socket handles its frames in order: once this is answered, the typing went out.
        sockets[typist]
            .request("Counter.read", None, Value::Null)
            .await;
        sockets[2].send_text(typing.clone()).await;
        loop {
            let packet = sockets[watcher].recv().await;
            if packet["type"] == "signal" {
                assert_eq!(
                    packet["body"]["data"]["sender"]["id"],
                    "layer:///identities/carol"
                );
                break;
            }
        }
    }
}

#[tokio::test]
async fn a_conversation_a_blocked_user_creates_is_never_seen_by_the_blocker() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let (status, _) = server
        .call(
            Method::POST,
            "/users/alice/blocks",
            Some(json!({"user_id": "mallory"})),
        )
        .await;
    assert_eq!(status, 204);
    let alice = emulator.login("alice").await;
    let mut alice_ws = emulator.ws(&alice).await;
    let mallory = emulator.login("mallory").await;
    let carol = emulator.login("carol").await;

    // Mallory's SDK creates one with Alice, and a group with Alice and Carol.
    let response = emulator
        .post(
            "/conversations",
            &mallory,
            json!({"participants": ["alice"], "distinct": true}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let pair: Value = response.json().await.unwrap();
    let response = emulator
        .post(
            "/conversations",
            &mallory,
            json!({"participants": ["alice", "carol"]}),
        )
        .await;
    let group: Value = response.json().await.unwrap();
    let ids: Vec<&str> = pair["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"layer:///identities/alice"),
        "Mallory sees Alice in it"
    );
    for conversation in [&pair, &group] {
        let path = format!("/conversations/{}/messages", uuid_of(conversation));
        let response = emulator
            .post(
                &path,
                &mallory,
                json!({"parts": [{"mime_type": "text/plain", "body": "hi"}]}),
            )
            .await;
        assert_eq!(response.status(), 201);
    }
    // Carol sees the group and Mallory's message in it.
    let path = format!("/conversations/{}/messages", uuid_of(&group));
    let carols: Vec<Value> = emulator.get(&path, &carol).await.json().await.unwrap();
    assert_eq!(carols.len(), 1);
    // Alice: neither is listed, both are 404, and her socket heard nothing of them.
    let listed: Vec<Value> = emulator
        .get("/conversations", &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, Vec::<Value>::new());
    for conversation in [&pair, &group] {
        let path = format!("/conversations/{}", uuid_of(conversation));
        assert_eq!(emulator.get(&path, &alice).await.status(), 404);
        let path = format!("/users/alice/conversations/{}", uuid_of(conversation));
        let (status, _) = server.json(Method::GET, &path, None).await;
        assert_eq!(status, 404);
    }
    let (_, theirs) = server
        .json(Method::GET, "/users/alice/conversations", None)
        .await;
    assert_eq!(theirs, json!([]));
    let (_, badge) = server.json(Method::GET, "/users/alice/badge", None).await;
    assert_eq!(badge["unread_message_count"], 0);
    // The first conversation Alice's socket hears of is one the server makes.
    let visible = server.conversation(&["alice", "mallory"]).await;
    let create = next_change(&mut alice_ws, "create", "Conversation").await;
    assert_eq!(create["object"]["id"], visible["id"]);
    // Creating the same distinct conversation herself, Alice finds Mallory's (without its
    // messages: those stay hidden).
    let response = emulator
        .post(
            "/conversations",
            &alice,
            json!({"participants": ["mallory"], "distinct": true}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let found: Value = response.json().await.unwrap();
    assert_eq!(found["id"], pair["id"]);
    let path = format!("/conversations/{}/messages", uuid_of(&pair));
    let alices: Vec<Value> = emulator.get(&path, &alice).await.json().await.unwrap();
    assert_eq!(alices, Vec::<Value>::new());
}

#[tokio::test]
async fn the_badge_follows_the_app_s_badging_mode() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let conversation = server.conversation(&["alice", "bob"]).await;
    for text in ["one", "two"] {
        server
            .send(&conversation, json!({"user_id": "alice"}), text)
            .await;
    }
    let (status, _) = server
        .json(
            Method::POST,
            "/announcements",
            Some(json!({"recipients": ["bob"], "sender": {"name": "Admin"},
                        "parts": [{"mime_type": "text/plain", "body": "news"}]})),
        )
        .await;
    assert_eq!(status, 202);
    let badging = |body: Value| {
        let emulator = &emulator;
        async move {
            let response = emulator
                .http
                .put(format!("{}/_mock/badging", emulator.url))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let badge_after_put = || async {
        let (status, _) = server
            .call(
                Method::PUT,
                "/users/bob/badge",
                Some(json!({"external_unread_count": 5})),
            )
            .await;
        assert_eq!(status, 204);
        emulator.notifications().await.last().unwrap()["pushes"][0]["badge"].clone()
    };
    assert_eq!(
        badge_after_put().await,
        7,
        "default: the app's 5 and two unread messages"
    );
    let cases = [
        (json!({"mode": "unread_conversations"}), json!(6)),
        (
            json!({"mode": "unread_messages", "include_announcements": true}),
            json!(8),
        ),
        (json!({"mode": "external_only"}), json!(5)),
        (json!({"mode": "off"}), Value::Null),
    ];
    for (setting, want) in cases {
        let (status, body) = badging(setting.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["badging"]
                .as_object()
                .unwrap()
                .values()
                .next()
                .unwrap()["mode"],
            setting["mode"]
        );
        assert_eq!(badge_after_put().await, want, "{setting}");
    }
    for bad in [
        json!({"mode": "loud"}),
        json!({"mode": "off", "extra": 1}),
        json!([]),
    ] {
        let (status, body) = badging(bad).await;
        assert!(status == 400 || status == 422, "{status} {body}");
        assert!(body["id"].is_string());
    }
    let response = emulator
        .http
        .get(format!("{}/_mock/badging", emulator.url))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["badging"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()["mode"],
        "off",
        "unchanged by the bad ones"
    );
}

#[tokio::test]
async fn pushes_keep_overrides_data_and_apns_fields_and_badges_go_out() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let conversation = server.conversation(&["alice", "bob", "carol"]).await;
    let notification = json!({
        "title": "New", "text": "Hi all", "sound": "chime.aiff", "category": "reply",
        "loc-key": "MSG", "loc-args": ["Alice"], "apns": {"launch-image": "l.png"},
        "data": {"deep_link": "/c/1", "n": 2},
        "recipients": [{"user_id": "bob", "text": "Hi Bob"}, {"recipient": "layer:///identities/carol", "sound": null}],
    });
    let path = format!("/conversations/{}/messages", uuid_of(&conversation));
    let body = json!({"sender": {"user_id": "alice"}, "parts": [{"mime_type": "text/plain", "body": "x"}],
                      "notification": notification});
    let (status, sent) = server.json(Method::POST, &path, Some(body)).await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(
        sent["notification"]["data"],
        json!({"deep_link": "/c/1", "n": 2})
    );
    assert_eq!(sent["notification"]["apns"]["launch-image"], "l.png");
    let notes = emulator.notifications().await;
    let push = notes.last().unwrap();
    assert_eq!(push["notification"]["loc-args"], json!(["Alice"]));
    assert_eq!(push["notification"]["category"], "reply");
    let pushes = push["pushes"].as_array().unwrap();
    let of = |who: &str| {
        pushes
            .iter()
            .find(|p| p["recipient"] == format!("layer:///identities/{who}"))
            .unwrap()
            .clone()
    };
    assert_eq!(of("bob")["text"], "Hi Bob");
    assert_eq!(of("bob")["title"], "New", "inherited");
    assert_eq!(of("carol")["text"], "Hi all");
    assert_eq!(of("bob")["badge"], 1, "one unread message");

    // Bad pushes are refused and nothing is sent or logged.
    for bad in [
        json!({"text": "x", "data": "not an object"}),
        json!({"text": "x", "loc-args": [1]}),
        json!({"text": "x", "apns": {"launch-image": 3}}),
        json!({"text": "x", "recipients": [{"text": "nobody named"}]}),
        json!({"text": "x", "data": {"big": "y".repeat(3000)}}),
    ] {
        let (status, error) = server
            .json(
                Method::POST,
                "/notifications",
                Some(json!({"recipients": ["bob"], "notification": bad})),
            )
            .await;
        assert_error(status, &error, 422, "invalid_property", 105);
        assert_eq!(error["data"]["property"], "notification");
    }
    assert_eq!(emulator.notifications().await.len(), notes.len());

    // Without default text or sound, an unlisted recipient's push is silent.
    let (status, _) = server
        .json(
            Method::POST,
            "/notifications",
            Some(json!({"recipients": ["bob", "carol"],
                        "notification": {"recipients": [{"user_id": "bob", "text": "only bob"}]}})),
        )
        .await;
    assert_eq!(status, 202);
    let notes = emulator.notifications().await;
    let pushes = notes.last().unwrap()["pushes"].clone();
    assert_eq!(pushes[0]["silent"], false);
    assert_eq!(pushes[1]["silent"], true);

    // PUT …/badge sends the new count at once: the app's 13 and Bob's unread message.
    let (status, _) = server
        .call(
            Method::PUT,
            "/users/bob/badge",
            Some(json!({"external_unread_count": 13})),
        )
        .await;
    assert_eq!(status, 204);
    let notes = emulator.notifications().await;
    let badge = notes.last().unwrap();
    assert_eq!(badge["recipients"], json!(["layer:///identities/bob"]));
    assert_eq!(badge["pushes"][0]["badge"], 14);
    assert_eq!(badge["pushes"][0]["silent"], true);
}

#[tokio::test]
async fn under_3_0_conversations_keep_their_significance() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let v3 = Server {
        accept: V3,
        ..Server::of(&emulator).await
    };
    for bad in [json!("high"), json!({"x": "y".repeat(5000)})] {
        let (status, error) = v3
            .json(
                Method::POST,
                "/conversations",
                Some(json!({"participants": ["a"], "significance": bad})),
            )
            .await;
        assert_error(status, &error, 422, "invalid_property", 105);
        assert_eq!(error["data"]["property"], "significance");
    }
    let significance = json!({"level": "high", "why": {"kind": "support"}});
    let (status, created) = v3
        .json(
            Method::POST,
            "/conversations",
            Some(json!({"participants": ["a"], "significance": significance})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["significance"], significance);
    let c = uuid_of(&created);
    let (_, got) = v3
        .json(Method::GET, &format!("/conversations/{c}"), None)
        .await;
    assert_eq!(got["significance"], significance);
    // Older versions have no such field.
    let (_, old) = server
        .json(Method::GET, &format!("/conversations/{c}"), None)
        .await;
    assert!(old.get("significance").is_none(), "{old}");
    let (_, plain) = v3
        .json(
            Method::POST,
            "/conversations",
            Some(json!({"participants": ["a"]})),
        )
        .await;
    assert_eq!(plain["significance"], Value::Null);
    // The refused creates made nothing.
    let (_, listed) = server
        .json(Method::GET, "/users/a/conversations", None)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn parts_carry_updated_at_and_take_rich_content_under_3_0() {
    let emulator = spawn_emulator().await;
    let server = Server::of(&emulator).await;
    let v3 = Server {
        accept: V3,
        ..Server::of(&emulator).await
    };
    let conversation = server.conversation(&["alice", "bob"]).await;
    let c = uuid_of(&conversation);
    let (_, sent) = server
        .send(&conversation, json!({"user_id": "alice"}), "first")
        .await;
    let m = uuid_of(&sent);
    let parts_path = format!("/conversations/{c}/messages/{m}/parts");
    let (_, parts) = v3.json(Method::GET, &parts_path, None).await;
    let (_, message) = v3
        .json(
            Method::GET,
            &format!("/conversations/{c}/messages/{m}"),
            None,
        )
        .await;
    assert_eq!(
        parts[0]["updated_at"], message["sent_at"],
        "unchanged since sent"
    );
    assert_eq!(message["updated_at"], message["sent_at"]);

    // The clock moves; the update stamps the part and the message.
    emulator.advance_clock_ms(60_000).await;
    let key = uuid_of(&parts[0]);
    let (status, _) = v3
        .call(
            Method::PUT,
            &format!("{parts_path}/{key}"),
            Some(json!({"mime_type": "text/plain", "body": "second"})),
        )
        .await;
    assert_eq!(status, 204);
    let (_, part) = v3
        .json(Method::GET, &format!("{parts_path}/{key}"), None)
        .await;
    assert_eq!(part["body"], "second");
    assert!(part["updated_at"].as_str().unwrap() > message["sent_at"].as_str().unwrap());
    let (_, message) = v3
        .json(
            Method::GET,
            &format!("/conversations/{c}/messages/{m}"),
            None,
        )
        .await;
    assert_eq!(message["updated_at"], part["updated_at"]);

    // A part with content the server uploaded; a second use of the same content is refused.
    let bytes = "z".repeat(4000);
    let response = server
        .request(Method::POST, &format!("/conversations/{c}/content"))
        .header("upload-content-type", "text/plain")
        .header("upload-content-length", bytes.len().to_string())
        .send()
        .await
        .unwrap();
    let reserved: Value = response.json().await.unwrap();
    let upload = emulator
        .http
        .put(reserved["upload_url"].as_str().unwrap())
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert!(upload.status().is_success());
    let rich =
        json!({"mime_type": "text/plain", "content": {"id": reserved["id"], "size": bytes.len()}});
    let (status, added) = v3.json(Method::POST, &parts_path, Some(rich.clone())).await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["content"]["id"], reserved["id"]);
    assert!(added["updated_at"].is_string());
    let (status, error) = v3.json(Method::POST, &parts_path, Some(rich)).await;
    assert_error(status, &error, 422, "invalid_property", 105);
    // Bob's SDK side downloads it.
    let bob = emulator.login("bob").await;
    let seen: Value = emulator
        .get(&format!("/messages/{m}"), &bob)
        .await
        .json()
        .await
        .unwrap();
    let url = seen["parts"][1]["content"]["download_url"]
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
    // Still there after the unattached-content lifetime: the message holds it.
    emulator.advance_clock_ms(7_200_000).await;
    // (Reserving content sweeps what expired.)
    let response = server
        .request(Method::POST, &format!("/conversations/{c}/content"))
        .header("upload-content-type", "text/plain")
        .header("upload-content-length", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let (_, part) = v3
        .json(
            Method::GET,
            &format!("{parts_path}/{}", uuid_of(&added)),
            None,
        )
        .await;
    assert!(part["content"]["download_url"].is_string(), "{part}");
}
