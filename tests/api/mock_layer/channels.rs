//! Channels at the wire level: `Channel.create` and channel messages over the WebSocket,
//! the channel endpoints over REST, the packets each change pushes, and export/import.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::helpers::*;
use super::platform::assert_error;

const QUIET: Duration = Duration::from_millis(300);
const CONTENT: &[u8] = b"\x00\x01channel content\xff";
const CHANNEL: &str = "layer:///channels/6f0e4cf2-9a51-4a57-9b43-0d4b0d2a1c01";
const OTHER_CHANNEL: &str = "layer:///channels/1b7a52d0-3f8e-4a8c-8f43-5e0f3c3a9d02";

fn message_id(n: u32) -> String {
    format!("layer:///messages/00000000-0000-4000-8000-{n:012}")
}

fn text(body: &str) -> Value {
    json!({"parts": [{"mime_type": "text/plain", "body": body}]})
}

/// Reads packets until one matches; each read gives up after five seconds.
async fn wait_for(ws: &mut Ws, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..50 {
        let packet = ws.recv().await;
        if pred(&packet) {
            return packet;
        }
    }
    panic!("no packet for {what}");
}

fn is_change(packet: &Value, operation: &str, kind: &str, id: &str) -> bool {
    packet["type"] == "change"
        && packet["body"]["operation"] == operation
        && packet["body"]["object"]["type"] == kind
        && packet["body"]["object"]["id"] == id
}

/// `Channel.create` from `ws`; the response body (`success`, `data`).
async fn create_channel(ws: &mut Ws, id: &str, name: &str, members: &[&str]) -> Value {
    let (response, _) = ws
        .request(
            "Channel.create",
            None,
            json!({"name": name, "metadata": null, "id": id, "members": members}),
        )
        .await;
    response["body"].clone()
}

/// `Message.create` into a channel from `ws`; the response body.
async fn send(ws: &mut Ws, channel: &str, id: &str, body: &str) -> Value {
    let mut data = text(body);
    data["id"] = id.into();
    let (response, _) = ws.request("Message.create", Some(channel), data).await;
    response["body"].clone()
}

fn channel_path(id: &str) -> String {
    format!("/channels/{}", id.rsplit('/').next().unwrap())
}

async fn status_and_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn channel_create_answers_the_caller_and_pushes_a_create_to_every_member() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let carol = emulator.login("carol").await;
    let mut alice_ws = emulator.ws_with_protocol(&alice, "layer-3.0").await;
    let mut bob_ws = emulator.ws(&bob).await;
    let mut carol_ws = emulator.ws(&carol).await;

    let (response, _) = alice_ws
        .request(
            "Channel.create",
            None,
            json!({"name": "general", "metadata": {"topic": "all"}, "id": CHANNEL,
                   "members": ["layer:///identities/bob"]}),
        )
        .await;
    assert_eq!(response["body"]["success"], true, "{response}");
    let data = &response["body"]["data"];
    assert_eq!(data["id"], CHANNEL, "the client's ID is kept");
    assert_eq!(data["name"], "general");
    assert_eq!(data["metadata"], json!({"topic": "all"}));
    assert_eq!(
        data["url"],
        format!("{}{}", emulator.url, channel_path(CHANNEL))
    );
    let membership = &data["membership"];
    assert_eq!(
        membership["id"],
        format!("{CHANNEL}/members/alice"),
        "the id channel.getMember builds"
    );
    assert_eq!(membership["channel"]["id"], CHANNEL);
    assert_eq!(membership["identity"]["user_id"], "alice");
    assert_eq!(membership["role"], "user");
    assert!(membership["joined_at"].as_str().unwrap().ends_with('Z'));

    let pushed = wait_for(&mut bob_ws, "the channel's create at bob", |p| {
        is_change(p, "create", "Channel", CHANNEL)
    })
    .await;
    let seen = &pushed["body"]["data"];
    assert_eq!(seen["name"], "general");
    assert_eq!(
        seen["membership"]["id"],
        format!("{CHANNEL}/members/bob"),
        "each member sees their own membership"
    );
    let mine = wait_for(&mut alice_ws, "the channel's create at alice", |p| {
        is_change(p, "create", "Channel", CHANNEL)
    })
    .await;
    assert_eq!(
        mine["body"]["data"]["membership"]["identity"]["user_id"],
        "alice"
    );
    assert!(
        carol_ws.drain(QUIET).await.is_empty(),
        "a non-member hears nothing"
    );

    let (status, listed) = status_and_json(emulator.get("/channels", &bob).await).await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], CHANNEL);
    let (status, listed) = status_and_json(emulator.get("/channels", &carol).await).await;
    assert_eq!(status, 200);
    assert_eq!(listed, json!([]), "only a member's channels are listed");
}

#[tokio::test]
async fn a_taken_name_is_a_conflict_carrying_the_channel_and_a_taken_id_is_id_in_use() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let mut alice_ws = emulator.ws(&alice).await;
    let mut bob_ws = emulator.ws(&bob).await;
    let created = create_channel(&mut alice_ws, CHANNEL, "general", &[]).await;
    assert_eq!(created["success"], true, "{created}");

    let conflict = create_channel(&mut bob_ws, OTHER_CHANNEL, "general", &[]).await;
    assert_eq!(conflict["success"], false);
    assert_eq!(conflict["data"]["id"], "conflict", "{conflict}");
    assert_eq!(conflict["data"]["code"], 108);
    assert_eq!(
        conflict["data"]["data"]["id"], CHANNEL,
        "the XDK adopts the existing channel from data.data"
    );
    assert_eq!(
        conflict["data"]["data"]["membership"],
        Value::Null,
        "bob did not become a member by asking"
    );

    let retried = create_channel(&mut alice_ws, CHANNEL, "another name", &[]).await;
    assert_eq!(retried["success"], false);
    assert_eq!(retried["data"]["id"], "id_in_use", "{retried}");
    assert_eq!(retried["data"]["code"], 111);
    assert_eq!(retried["data"]["data"]["id"], CHANNEL);
    assert_eq!(retried["data"]["data"]["name"], "general");

    let (_, listed) = status_and_json(emulator.get("/channels", &alice).await).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "nothing new was made");
}

#[tokio::test]
async fn channel_messages_have_no_recipient_status_no_receipts_and_no_pushes() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let mut alice_ws = emulator.ws(&alice).await;
    let mut bob_ws = emulator.ws(&bob).await;
    create_channel(&mut alice_ws, CHANNEL, "general", &["bob"]).await;

    let mut data = text("hello channel");
    data["id"] = message_id(1).into();
    data["notification"] = json!({"title": "Alice", "text": "hello channel", "sound": "ding"});
    let (response, _) = alice_ws
        .request("Message.create", Some(CHANNEL), data)
        .await;
    assert_eq!(response["body"]["success"], true, "{response}");
    let message = &response["body"]["data"];
    assert_eq!(message["id"], message_id(1));
    assert_eq!(message["channel"]["id"], CHANNEL);
    assert_eq!(message["position"], 1);
    assert_eq!(message["sender"]["user_id"], "alice");
    assert_eq!(message["parts"][0]["body"], "hello channel");
    for absent in [
        "conversation",
        "recipient_status",
        "is_unread",
        "notification",
    ] {
        assert!(message.get(absent).is_none(), "{absent} in {message}");
    }

    let pushed = wait_for(&mut bob_ws, "the message at bob", |p| {
        is_change(p, "create", "Message", &message_id(1))
    })
    .await;
    assert_eq!(
        pushed["body"]["data"], *message,
        "every member sees the same message"
    );
    assert!(
        emulator.notifications().await.is_empty(),
        "channel messages push no notification"
    );

    // Receipts: none on the message's own URL, and none through the conversations' path.
    let receipts = format!("{}/receipts", path_of(message));
    let (status, body) = status_and_json(
        emulator
            .post(&receipts, &bob, json!({"type": "read"}))
            .await,
    )
    .await;
    assert_error(status, &body, 405, "method_not_allowed", 109);
    assert!(body["message"].as_str().unwrap().contains("receipts"));
    let uuid = message_id(1).rsplit('/').next().unwrap().to_owned();
    let (status, body) = status_and_json(
        emulator
            .post(
                &format!("/messages/{uuid}/receipts"),
                &bob,
                json!({"type": "read"}),
            )
            .await,
    )
    .await;
    assert_error(status, &body, 404, "not_found", 102);

    let (status, listed) = status_and_json(
        emulator
            .get(&format!("{}/messages", channel_path(CHANNEL)), &bob)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(listed, json!([message]));
    let (status, one) = status_and_json(emulator.get(&path_of(message), &bob).await).await;
    assert_eq!(status, 200);
    assert_eq!(one, *message);
}

#[tokio::test]
async fn a_non_member_may_look_a_channel_up_but_not_read_send_or_add() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let carol = emulator.login("carol").await;
    let mut alice_ws = emulator.ws(&alice).await;
    let mut carol_ws = emulator.ws(&carol).await;
    create_channel(&mut alice_ws, CHANNEL, "general", &[]).await;
    send(&mut alice_ws, CHANNEL, &message_id(1), "members only").await;

    let path = channel_path(CHANNEL);
    let (status, channel) = status_and_json(emulator.get(&path, &carol).await).await;
    assert_eq!(status, 200, "channels are public: {channel}");
    assert_eq!(channel["name"], "general");
    assert_eq!(channel["membership"], Value::Null);

    for list in ["messages", "members"] {
        let (status, body) =
            status_and_json(emulator.get(&format!("{path}/{list}"), &carol).await).await;
        assert_error(status, &body, 403, "access_denied", 101);
    }
    let message = format!(
        "{path}/messages/{}",
        message_id(1).rsplit('/').next().unwrap()
    );
    let (status, body) = status_and_json(emulator.get(&message, &carol).await).await;
    assert_error(status, &body, 403, "access_denied", 101);
    let (status, body) =
        status_and_json(emulator.send(Method::DELETE, &message, &carol, None).await).await;
    assert_error(status, &body, 403, "access_denied", 101);

    let sent = send(&mut carol_ws, CHANNEL, &message_id(2), "let me in").await;
    assert_eq!(sent["success"], false);
    assert_eq!(sent["data"]["id"], "access_denied", "{sent}");

    let (status, body) = status_and_json(
        emulator
            .send(Method::PUT, &format!("{path}/members/dave"), &carol, None)
            .await,
    )
    .await;
    assert_error(status, &body, 403, "access_denied", 101);
    let (status, body) = status_and_json(
        emulator
            .send(
                Method::DELETE,
                &format!("{path}/members/alice"),
                &carol,
                None,
            )
            .await,
    )
    .await;
    assert_error(status, &body, 403, "access_denied", 101);

    let unknown = channel_path(OTHER_CHANNEL);
    for path in [
        unknown.clone(),
        format!("{unknown}/messages"),
        format!("{unknown}/members"),
    ] {
        let (status, body) = status_and_json(emulator.get(&path, &alice).await).await;
        assert_error(status, &body, 404, "not_found", 102);
    }
    let (status, body) = status_and_json(emulator.get("/channels/not-a-uuid", &alice).await).await;
    assert_error(status, &body, 404, "not_found", 102);
    let (_, messages) =
        status_and_json(emulator.get(&format!("{path}/messages"), &alice).await).await;
    assert_eq!(
        messages.as_array().unwrap().len(),
        1,
        "nothing of carol's got in"
    );
}

#[tokio::test]
async fn joining_and_leaving_over_rest_push_membership_and_channel_changes() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let carol = emulator.login("carol").await;
    let mut alice_ws = emulator.ws(&alice).await;
    let mut bob_ws = emulator.ws(&bob).await;
    let mut carol_ws = emulator.ws(&carol).await;
    create_channel(&mut alice_ws, CHANNEL, "general", &["bob"]).await;
    wait_for(&mut bob_ws, "bob's create", |p| {
        is_change(p, "create", "Channel", CHANNEL)
    })
    .await;
    let path = channel_path(CHANNEL);

    // Carol joins by herself.
    let response = emulator
        .send(Method::PUT, &format!("{path}/members/carol"), &carol, None)
        .await;
    assert_eq!(response.status(), 204);
    let carol_membership = format!("{CHANNEL}/members/carol");
    let created = wait_for(&mut carol_ws, "the channel at carol", |p| {
        is_change(p, "create", "Channel", CHANNEL)
    })
    .await;
    assert_eq!(
        created["body"]["data"]["membership"]["id"],
        carol_membership
    );
    for ws in [&mut carol_ws, &mut alice_ws, &mut bob_ws] {
        let joined = wait_for(ws, "carol's membership", |p| {
            is_change(p, "create", "Membership", &carol_membership)
        })
        .await;
        let data = &joined["body"]["data"];
        assert_eq!(data["identity"]["user_id"], "carol");
        assert_eq!(data["channel"]["id"], CHANNEL);
    }
    let again = emulator
        .send(Method::PUT, &format!("{path}/members/carol"), &carol, None)
        .await;
    assert_eq!(again.status(), 204, "joining twice is fine");
    assert!(
        alice_ws.drain(QUIET).await.is_empty(),
        "and changes nothing"
    );

    let (status, members) =
        status_and_json(emulator.get(&format!("{path}/members"), &carol).await).await;
    assert_eq!(status, 200);
    let users: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["identity"]["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["alice", "bob", "carol"], "in the order they joined");
    let (status, one) = status_and_json(
        emulator
            .get(
                &format!("{path}/members/layer%3A%2F%2F%2Fidentities%2Fbob"),
                &carol,
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["id"], format!("{CHANNEL}/members/bob"));
    let (status, body) =
        status_and_json(emulator.get(&format!("{path}/members/dave"), &carol).await).await;
    assert_error(status, &body, 404, "not_found", 102);

    let sent = send(&mut carol_ws, CHANNEL, &message_id(1), "hi all").await;
    assert_eq!(sent["success"], true, "a member may send: {sent}");
    wait_for(&mut bob_ws, "carol's message at bob", |p| {
        is_change(p, "create", "Message", &message_id(1))
    })
    .await;

    // Alice removes Bob: the channel leaves his devices; the others hear nothing (the
    // XDK's Membership cannot take a delete).
    wait_for(&mut alice_ws, "carol's message at alice", |p| {
        is_change(p, "create", "Message", &message_id(1))
    })
    .await;
    let response = emulator
        .send(Method::DELETE, &format!("{path}/members/bob"), &alice, None)
        .await;
    assert_eq!(response.status(), 204);
    let gone = wait_for(&mut bob_ws, "the channel deleted at bob", |p| {
        is_change(p, "delete", "Channel", CHANNEL)
    })
    .await;
    assert_eq!(gone["body"]["data"]["mode"], "my_devices");
    assert!(
        alice_ws.drain(QUIET).await.is_empty(),
        "no Membership delete"
    );
    let (status, body) =
        status_and_json(emulator.get(&format!("{path}/messages"), &bob).await).await;
    assert_error(status, &body, 403, "access_denied", 101);
    let (status, body) = status_and_json(
        emulator
            .send(Method::DELETE, &format!("{path}/members/bob"), &alice, None)
            .await,
    )
    .await;
    assert_error(status, &body, 404, "not_found", 102);

    // Carol leaves; Alice is left alone with the channel.
    let response = emulator
        .send(
            Method::DELETE,
            &format!("{path}/members/carol"),
            &carol,
            None,
        )
        .await;
    assert_eq!(response.status(), 204);
    wait_for(&mut carol_ws, "the channel deleted at carol", |p| {
        is_change(p, "delete", "Channel", CHANNEL)
    })
    .await;
    let (_, members) =
        status_and_json(emulator.get(&format!("{path}/members"), &alice).await).await;
    assert_eq!(members.as_array().unwrap().len(), 1);
    assert!(
        bob_ws.drain(QUIET).await.is_empty(),
        "bob hears nothing more"
    );
}

#[tokio::test]
async fn channels_messages_and_members_page_with_from_id() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let mut alice_ws = emulator.ws(&alice).await;
    let ids = [
        CHANNEL.to_owned(),
        OTHER_CHANNEL.to_owned(),
        "layer:///channels/9c3f0f8e-33b1-4d5e-8f7a-6a9b2c1d0e03".to_owned(),
    ];
    for (i, id) in ids.iter().enumerate() {
        let created =
            create_channel(&mut alice_ws, id, &format!("room-{i}"), &["bob", "carol"]).await;
        assert_eq!(created["success"], true, "{created}");
    }
    let response = emulator.get("/channels?page_size=2", &alice).await;
    assert_eq!(response.headers()["layer-count"], "3");
    let first: Value = response.json().await.unwrap();
    let first: Vec<&str> = first
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(first, [ids[2].as_str(), ids[1].as_str()], "newest first");
    let (_, rest) = status_and_json(
        emulator
            .get(&format!("/channels?page_size=2&from_id={}", ids[1]), &alice)
            .await,
    )
    .await;
    assert_eq!(rest.as_array().unwrap().len(), 1);
    assert_eq!(rest[0]["id"], ids[0]);

    for n in 1..=3 {
        let sent = send(&mut alice_ws, CHANNEL, &message_id(n), &format!("m{n}")).await;
        assert_eq!(sent["data"]["position"], n);
    }
    let path = channel_path(CHANNEL);
    let response = emulator
        .get(&format!("{path}/messages?page_size=2"), &alice)
        .await;
    assert_eq!(response.headers()["layer-count"], "3");
    let page: Value = response.json().await.unwrap();
    let bodies: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["parts"][0]["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["m3", "m2"]);
    let (_, page) = status_and_json(
        emulator
            .get(
                &format!("{path}/messages?page_size=2&from_id={}", message_id(2)),
                &alice,
            )
            .await,
    )
    .await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["parts"][0]["body"], "m1");

    let response = emulator
        .get(&format!("{path}/members?page_size=2"), &alice)
        .await;
    assert_eq!(response.headers()["layer-count"], "3");
    let page: Value = response.json().await.unwrap();
    assert_eq!(page.as_array().unwrap().len(), 2);
    let last = page[1]["id"].as_str().unwrap().to_owned();
    let (_, page) = status_and_json(
        emulator
            .get(
                &format!("{path}/members?page_size=2&from_id={last}"),
                &alice,
            )
            .await,
    )
    .await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["identity"]["user_id"], "carol");

    let (status, body) =
        status_and_json(emulator.get("/channels?page_size=zero", &alice).await).await;
    assert_error(status, &body, 422, "invalid_property", 105);
}

#[tokio::test]
async fn only_its_sender_deletes_a_channel_message_and_every_member_hears_it() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let mut alice_ws = emulator.ws(&alice).await;
    let mut bob_ws = emulator.ws(&bob).await;
    create_channel(&mut alice_ws, CHANNEL, "general", &["bob"]).await;
    let sent = send(&mut alice_ws, CHANNEL, &message_id(1), "oops").await;
    let message = sent["data"].clone();

    let (status, body) = status_and_json(
        emulator
            .send(Method::DELETE, &path_of(&message), &bob, None)
            .await,
    )
    .await;
    assert_error(status, &body, 403, "access_denied", 101);

    let response = emulator
        .send(Method::DELETE, &path_of(&message), &alice, None)
        .await;
    assert_eq!(response.status(), 204);
    let deleted = wait_for(&mut bob_ws, "the deletion at bob", |p| {
        is_change(p, "delete", "Message", &message_id(1))
    })
    .await;
    assert_eq!(deleted["body"]["data"]["mode"], "all_participants");
    let (status, body) = status_and_json(emulator.get(&path_of(&message), &alice).await).await;
    assert_error(status, &body, 404, "not_found", 102);
    let (_, listed) = status_and_json(
        emulator
            .get(&format!("{}/messages", channel_path(CHANNEL)), &bob)
            .await,
    )
    .await;
    assert_eq!(listed, json!([]));
    let next = send(&mut alice_ws, CHANNEL, &message_id(2), "again").await;
    assert_eq!(next["data"]["position"], 2, "positions are not reused");
}

#[tokio::test]
async fn bad_channel_input_answers_a_clean_error_and_changes_nothing() {
    let emulator = spawn_with(|s| s.max_channel_members = 2).await;
    let alice = emulator.login("alice").await;
    let mut ws = emulator.ws(&alice).await;
    let cases = [
        (
            json!({"id": CHANNEL, "members": []}),
            "missing_property",
            104,
        ),
        (json!({"name": 7, "id": CHANNEL}), "invalid_property", 105),
        (
            json!({"name": "  ", "id": CHANNEL}),
            "invalid_property",
            105,
        ),
        (
            json!({"name": "x".repeat(300), "id": CHANNEL}),
            "invalid_property",
            105,
        ),
        (
            json!({"name": "6f0e4cf2-9a51-4a57-9b43-0d4b0d2a1c01", "id": CHANNEL}),
            "invalid_property",
            105,
        ),
        (
            json!({"name": "a", "id": "layer:///conversations/6f0e4cf2-9a51-4a57-9b43-0d4b0d2a1c01"}),
            "invalid_property",
            105,
        ),
        (json!({"name": "a", "id": 5}), "invalid_property", 105),
        (
            json!({"name": "a", "id": CHANNEL, "members": "bob"}),
            "invalid_property",
            105,
        ),
        (
            json!({"name": "a", "id": CHANNEL, "members": [42]}),
            "invalid_property",
            105,
        ),
        (
            json!({"name": "a", "id": CHANNEL, "members": ["b", "c", "d"]}),
            "invalid_property",
            105,
        ),
        (
            json!({"name": "a", "id": CHANNEL, "members": ["b", "c"]}),
            "invalid_property",
            105,
        ),
        (
            json!({"name": "a", "id": CHANNEL, "metadata": ["x"]}),
            "invalid_property",
            105,
        ),
        (
            json!({"name": "a", "id": CHANNEL, "metadata": {"n": 1}}),
            "invalid_property",
            105,
        ),
        (json!("a string"), "invalid_request", 10),
    ];
    for (data, id, code) in cases {
        let (response, _) = ws.request("Channel.create", None, data.clone()).await;
        let body = &response["body"];
        assert_eq!(body["success"], false, "{data}");
        assert_eq!(body["data"]["id"], id, "{data}: {body}");
        assert_eq!(body["data"]["code"], code, "{data}");
    }
    let (_, listed) = status_and_json(emulator.get("/channels", &alice).await).await;
    assert_eq!(listed, json!([]), "nothing was made");

    let unknown = send(&mut ws, OTHER_CHANNEL, &message_id(1), "into nothing").await;
    assert_eq!(unknown["data"]["id"], "not_found", "{unknown}");
    create_channel(&mut ws, CHANNEL, "general", &["bob"]).await;
    let (response, _) = ws
        .request("Message.create", Some(CHANNEL), json!({"parts": []}))
        .await;
    assert_eq!(response["body"]["data"]["id"], "invalid_property");
    let (response, _) = ws
        .request("Message.create", Some("layer:///channels/nope"), text("x"))
        .await;
    assert_eq!(response["body"]["data"]["id"], "invalid_property");

    let path = channel_path(CHANNEL);
    let full = emulator
        .send(Method::PUT, &format!("{path}/members/carol"), &alice, None)
        .await;
    let (status, body) = status_and_json(full).await;
    assert_error(status, &body, 422, "invalid_property", 105);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("max_channel_members")
    );
    let not_an_identity = emulator
        .send(
            Method::PUT,
            &format!("{path}/members/layer%3A%2F%2F%2Fconversations%2Fx"),
            &alice,
            None,
        )
        .await;
    let (status, body) = status_and_json(not_an_identity).await;
    assert_error(status, &body, 404, "not_found", 102);
    let (status, body) =
        status_and_json(emulator.send(Method::DELETE, &path, &alice, None).await).await;
    assert_error(status, &body, 405, "method_not_allowed", 109);
    let (_, members) =
        status_and_json(emulator.get(&format!("{path}/members"), &alice).await).await;
    assert_eq!(members.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn channels_count_against_max_conversations_and_their_messages_against_max_messages() {
    let emulator = spawn_with(|s| {
        s.max_conversations = 2;
        s.max_messages = 2;
    })
    .await;
    let alice = emulator.login("alice").await;
    let mut ws = emulator.ws(&alice).await;
    let conversation = emulator.conversation(&alice, &["bob"]).await;
    emulator.message(&alice, &conversation, "one").await;
    assert_eq!(
        create_channel(&mut ws, CHANNEL, "general", &[]).await["success"],
        true
    );
    let over = create_channel(&mut ws, OTHER_CHANNEL, "second", &[]).await;
    assert_eq!(over["data"]["id"], "rate_limit_exceeded", "{over}");
    assert_eq!(over["data"]["code"], 7);
    assert_eq!(
        send(&mut ws, CHANNEL, &message_id(1), "two").await["success"],
        true
    );
    let over = send(&mut ws, CHANNEL, &message_id(2), "three").await;
    assert_eq!(over["data"]["id"], "rate_limit_exceeded", "{over}");
}

#[tokio::test]
async fn channels_and_their_messages_hold_room_conversations_and_messages_need_too() {
    let emulator = spawn_with(|s| {
        s.max_conversations = 2;
        s.max_messages = 2;
    })
    .await;
    let alice = emulator.login("alice").await;
    let mut ws = emulator.ws(&alice).await;
    create_channel(&mut ws, CHANNEL, "general", &[]).await;
    create_channel(&mut ws, OTHER_CHANNEL, "second", &[]).await;
    let refused = emulator
        .post(
            "/conversations",
            &alice,
            json!({"participants": ["bob"], "distinct": false}),
        )
        .await;
    let (status, body) = status_and_json(refused).await;
    assert_error(status, &body, 429, "rate_limit_exceeded", 7);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("max_conversations"),
        "{body}"
    );

    // A conversation message may not take a channel message's ID (they share one space).
    let room = spawn_with(|s| s.max_messages = 2).await;
    let alice = room.login("alice").await;
    let mut ws = room.ws(&alice).await;
    create_channel(&mut ws, CHANNEL, "general", &[]).await;
    assert_eq!(
        send(&mut ws, CHANNEL, &message_id(1), "in the channel").await["success"],
        true
    );
    let conversation = room.conversation(&alice, &["bob"]).await;
    let path = format!("{}/messages", path_of(&conversation));
    let taken = room
        .post(
            &path,
            &alice,
            json!({"id": message_id(1), "parts": [{"mime_type": "text/plain", "body": "x"}]}),
        )
        .await;
    let (status, body) = status_and_json(taken).await;
    assert_error(status, &body, 409, "id_in_use", 111);
    // And the channel message holds one of the two messages' room.
    room.message(&alice, &conversation, "second").await;
    let over = room
        .post(
            &path,
            &alice,
            json!({"parts": [{"mime_type": "text/plain", "body": "third"}]}),
        )
        .await;
    let (status, body) = status_and_json(over).await;
    assert_error(status, &body, 429, "rate_limit_exceeded", 7);
}

async fn export(emulator: &Emulator) -> Value {
    let response = emulator
        .http
        .get(format!("{}/_mock/export?app_id={STAGING}", emulator.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// What alice sees of her channels, with the emulator's address taken out.
async fn alice_sees(emulator: &Emulator, alice: &str) -> Value {
    let (_, channels) = status_and_json(emulator.get("/channels", alice).await).await;
    let mut seen = json!({"channels": channels, "messages": [], "members": []});
    for channel in channels.as_array().unwrap() {
        let path = channel_path(channel["id"].as_str().unwrap());
        let (_, messages) =
            status_and_json(emulator.get(&format!("{path}/messages"), alice).await).await;
        let (_, members) =
            status_and_json(emulator.get(&format!("{path}/members"), alice).await).await;
        seen["messages"].as_array_mut().unwrap().push(messages);
        seen["members"].as_array_mut().unwrap().push(members);
    }
    let mut seen: Value =
        serde_json::from_str(&seen.to_string().replace(&emulator.url, "BASE")).unwrap();
    without_expirations(&mut seen);
    seen
}

/// A download URL's advertised expiration is an hour from when it is shown.
fn without_expirations(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("expiration");
            map.values_mut().for_each(without_expirations);
        }
        Value::Array(items) => items.iter_mut().for_each(without_expirations),
        _ => {}
    }
}

#[tokio::test]
async fn channels_their_members_and_messages_survive_export_and_import() {
    let first = spawn_emulator().await;
    let alice = first.login("alice").await;
    let bob = first.login("bob").await;
    let mut alice_ws = first.ws(&alice).await;
    let mut bob_ws = first.ws(&bob).await;
    create_channel(&mut alice_ws, CHANNEL, "general", &["bob", "carol"]).await;
    let (response, _) = alice_ws
        .request(
            "Channel.create",
            None,
            json!({"name": "random", "metadata": {"topic": "cats"}, "id": OTHER_CHANNEL, "members": []}),
        )
        .await;
    assert_eq!(response["body"]["success"], true);
    send(&mut alice_ws, CHANNEL, &message_id(1), "first").await;
    send(&mut bob_ws, CHANNEL, &message_id(2), "second").await;
    send(&mut alice_ws, OTHER_CHANNEL, &message_id(3), "elsewhere").await;
    // A rich-content part, uploaded as for a conversation.
    let content: Value = first
        .reserve_content(&alice, CONTENT.len())
        .await
        .json()
        .await
        .unwrap();
    let put = first
        .http
        .put(content["upload_url"].as_str().unwrap())
        .body(CONTENT.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let (response, _) = alice_ws
        .request(
            "Message.create",
            Some(OTHER_CHANNEL),
            json!({"id": message_id(5), "parts": [{"mime_type": "application/octet-stream",
                   "content": {"id": content["id"], "size": CONTENT.len()}}]}),
        )
        .await;
    assert_eq!(response["body"]["success"], true, "{response}");
    let removed = first
        .send(
            Method::DELETE,
            &format!("{}/members/carol", channel_path(CHANNEL)),
            &alice,
            None,
        )
        .await;
    assert_eq!(removed.status(), 204);

    let doc = export(&first).await;
    assert_eq!(doc["channels"].as_array().unwrap().len(), 2, "{doc}");
    assert_eq!(doc["channel_messages"].as_array().unwrap().len(), 4);
    assert_eq!(doc["content"][0]["attached_to"], message_id(5), "{doc}");
    assert_eq!(
        doc["messages"],
        json!([]),
        "channel messages are not conversation messages"
    );
    let general = doc["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == CHANNEL)
        .unwrap();
    let members: Vec<&str> = general["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["alice", "bob"]);
    let before = alice_sees(&first, &alice).await;

    let second = spawn_emulator().await;
    let response = second
        .http
        .post(format!("{}/_mock/import", second.url))
        .header("content-type", "application/json")
        .body(doc.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204, "{}", response.text().await.unwrap());
    assert_eq!(
        export(&second).await,
        doc,
        "a second export equals the document"
    );
    let alice = second.login("alice").await;
    assert_eq!(
        alice_sees(&second, &alice).await,
        before,
        "alice sees the same channels"
    );
    let (_, elsewhere) = status_and_json(
        second
            .get(&format!("{}/messages", channel_path(OTHER_CHANNEL)), &alice)
            .await,
    )
    .await;
    let download = elsewhere[0]["parts"][0]["content"]["download_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(download.starts_with(&second.url), "{download}");
    let bytes = second.http.get(download).send().await.unwrap();
    assert_eq!(bytes.status(), 200);
    assert_eq!(bytes.bytes().await.unwrap().as_ref(), CONTENT);

    // The name stays taken, and new messages follow the imported ones.
    let mut ws = second.ws(&alice).await;
    let conflict = create_channel(
        &mut ws,
        "layer:///channels/9c3f0f8e-33b1-4d5e-8f7a-6a9b2c1d0e03",
        "general",
        &[],
    )
    .await;
    assert_eq!(conflict["data"]["id"], "conflict");
    assert_eq!(conflict["data"]["data"]["id"], CHANNEL);
    let next = send(&mut ws, CHANNEL, &message_id(4), "after import").await;
    assert_eq!(next["data"]["position"], 3);
    let reused = send(&mut ws, CHANNEL, &message_id(1), "same id").await;
    assert_eq!(reused["data"]["id"], "id_in_use");

    // A document naming a member who is not among identities changes nothing.
    let mut bad = doc.clone();
    bad["channels"][0]["members"][0]["user_id"] = "nobody".into();
    let response = second
        .http
        .post(format!("{}/_mock/import", second.url))
        .header("content-type", "application/json")
        .body(bad.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        export(&second).await["channel_messages"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}
