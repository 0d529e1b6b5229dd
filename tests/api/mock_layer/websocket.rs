//! The WebSocket: subprotocols, counters, creates and their pushes, receipts, replay, typing.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::helpers::*;

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn the_subprotocol_is_echoed_and_counters_start_at_zero() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    for protocol in ["layer-2.0", "layer-3.0"] {
        let mut ws = emulator.ws_with_protocol(&alice, protocol).await;
        assert_eq!(ws.protocol.as_deref(), Some(protocol));
        let (first, _) = ws.request("Presence.subscribe", None, Value::Null).await;
        assert_eq!(first["counter"], 0);
        assert_eq!(first["body"]["success"], true);
        assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
        let (second, _) = ws
            .request(
                "Presence.update",
                None,
                json!([{"operation": "set", "property": "status", "value": "auto"}]),
            )
            .await;
        assert_eq!(second["counter"], 1);
        let (counter, _) = ws.request("Counter.read", None, Value::Null).await;
        assert_eq!(counter["counter"], 2);
        assert_eq!(counter["body"]["data"]["counter"], 1);
    }
}

#[tokio::test]
async fn creates_answer_the_caller_then_push_to_every_participant() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let mut alice_ws = emulator.ws(&alice).await;
    let mut alice_tab = emulator.ws(&alice).await;
    let mut bob_ws = emulator.ws(&bob).await;
    let conversation_id = "layer:///conversations/877107b8-0171-4af4-a284-82b5ce6b8ec6";
    let (response, _) = alice_ws
        .request(
            "Conversation.create",
            None,
            json!({
                "participants": ["layer:///identities/bob", "layer:///identities/alice"],
                "distinct": false, "metadata": {"title": "probe"}, "id": conversation_id,
            }),
        )
        .await;
    assert_eq!(response["body"]["success"], true);
    assert_eq!(
        response["body"]["data"]["id"], conversation_id,
        "the client's ID is kept"
    );
    let message_id = "layer:///messages/3281bc52-7920-4f80-b801-8a7128f1dd36";
    let (response, before) = alice_ws
        .request("Message.create", Some(conversation_id), json!({
            "parts": [{"mime_type": "text/plain", "body": "Hello Bob"}, {"mime_type": "application/json", "body": "{\"lat\":1}"}],
            "id": message_id,
        }))
        .await;
    assert_eq!(
        before.len(),
        1,
        "the conversation's create came before: {before:?}"
    );
    assert_eq!(response["body"]["data"]["id"], message_id);
    assert_eq!(
        response["body"]["data"]["recipient_status"]["layer:///identities/bob"],
        "sent"
    );
    let after = alice_ws.drain(QUIET).await;
    let kinds: Vec<(&str, &str)> = after
        .iter()
        .map(|p| {
            (
                p["body"]["operation"].as_str().unwrap(),
                p["body"]["object"]["type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds, [("create", "Message"), ("update", "Conversation")]);
    // Counters have no gaps across responses and changes.
    assert_eq!(
        after[0]["counter"].as_u64().unwrap(),
        response["counter"].as_u64().unwrap() + 1
    );

    let bob_packets = bob_ws.drain(QUIET).await;
    let counters: Vec<u64> = bob_packets
        .iter()
        .map(|p| p["counter"].as_u64().unwrap())
        .collect();
    assert_eq!(counters, [0, 1, 2]);
    let bob_message = &bob_packets[1]["body"]["data"];
    assert_eq!(bob_message["is_unread"], true);
    assert_eq!(bob_message["conversation"]["id"], conversation_id);
    assert_eq!(
        bob_packets[2]["body"]["data"][0],
        json!({"operation": "set", "property": "last_message", "id": message_id})
    );
    assert_eq!(bob_packets[2]["body"]["data"][1]["value"], 1);
    assert_eq!(
        alice_tab.drain(QUIET).await.len(),
        3,
        "the sender's other device sees it all"
    );

    // Retrying the same IDs: id_in_use with the object, which the SDK counts as success.
    let (retry, _) = alice_ws
        .request(
            "Conversation.create",
            None,
            json!({"participants": ["layer:///identities/bob"], "id": conversation_id}),
        )
        .await;
    assert_eq!(retry["body"]["success"], false);
    assert_eq!(retry["body"]["data"]["id"], "id_in_use");
    assert_eq!(retry["body"]["data"]["data"]["id"], conversation_id);

    // Bob's receipts reach both, escaped and upgrade-only.
    let receipts = format!("/messages/{}/receipts", &message_id[18..]);
    assert_eq!(
        emulator
            .post(&receipts, &bob, json!({"type": "delivery"}))
            .await
            .status(),
        204
    );
    assert_eq!(
        emulator
            .post(&receipts, &bob, json!({"type": "read"}))
            .await
            .status(),
        204
    );
    let seen = alice_ws.drain(QUIET).await;
    let statuses: Vec<&str> = seen
        .iter()
        .map(|p| p["body"]["data"][0]["value"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["delivered", "read"]);
    assert_eq!(
        seen[0]["body"]["data"][0]["property"],
        "recipient_status.layer:///identities/bob"
    );
    let bob_seen = bob_ws.drain(QUIET).await;
    assert_eq!(
        bob_seen.last().unwrap()["body"]["data"][0],
        json!({"operation": "set", "property": "unread_message_count", "value": 0})
    );
}

#[tokio::test]
async fn a_message_to_a_conversation_the_caller_is_not_in_is_not_found() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let carol = emulator.login("carol").await;
    let c = emulator.conversation(&alice, &["bob"]).await;
    let mut ws = emulator.ws(&carol).await;
    let (response, _) = ws
        .request(
            "Message.create",
            c["id"].as_str(),
            json!({"parts": [{"mime_type": "text/plain", "body": "x"}]}),
        )
        .await;
    assert_eq!(response["body"]["success"], false);
    assert_eq!(response["body"]["data"]["id"], "not_found");
}

/// The `(operation, object type, object id)` of change packets.
fn changes(packets: &[Value]) -> Vec<(String, String, String)> {
    packets
        .iter()
        .filter(|p| p["type"] == "change")
        .map(|p| {
            let body = &p["body"];
            (
                body["operation"].as_str().unwrap().to_owned(),
                body["object"]["type"].as_str().unwrap().to_owned(),
                body["object"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn event_replay_resends_what_a_closed_socket_missed_and_nothing_older() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let mut bob_ws = emulator.ws(&bob).await;
    // Seen live: the conversation's create, then (a moment later) a first message.
    let c = emulator.conversation(&alice, &["bob"]).await;
    let created = bob_ws.recv().await;
    emulator.advance_clock_ms(5).await;
    emulator.message(&alice, &c, "seen live").await;
    let live = bob_ws.drain(QUIET).await;
    assert_eq!(changes(&live).len(), 2, "{live:?}");
    let last_seen = live.last().unwrap()["timestamp"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(created["timestamp"].as_str().unwrap() < last_seen.as_str());
    drop(bob_ws);
    let m2 = emulator.message(&alice, &c, "while you were away").await;

    let mut bob_ws = emulator.ws(&bob).await;
    let (response, replayed) = bob_ws
        .request("Event.replay", None, json!({"from_timestamp": last_seen}))
        .await;
    assert_eq!(response["body"]["success"], true);
    assert_eq!(
        replayed[0]["counter"], 0,
        "a new connection counts from zero"
    );
    let ids: Vec<String> = changes(&replayed)
        .into_iter()
        .map(|(_, _, id)| id)
        .collect();
    assert!(
        ids.contains(&m2["id"].as_str().unwrap().to_owned()),
        "{ids:?}"
    );
    assert!(
        !changes(&replayed)
            .iter()
            .any(|(operation, kind, _)| operation == "create" && kind == "Conversation"),
        "the conversation's create came before from_timestamp: {replayed:?}"
    );
    assert!(
        replayed
            .iter()
            .all(|p| p["timestamp"].as_str().unwrap() >= last_seen.as_str()),
        "nothing older than from_timestamp: {replayed:?}"
    );
    // What happened at exactly from_timestamp is replayed too: "from" includes it.
    let at_from: Vec<&Value> = live
        .iter()
        .filter(|p| p["timestamp"] == last_seen.as_str())
        .map(|p| &p["body"])
        .collect();
    assert!(!at_from.is_empty());
    for body in at_from {
        assert!(
            replayed.iter().any(|p| p["body"] == *body),
            "{body} not replayed"
        );
    }
    let (bad, _) = bob_ws
        .request("Event.replay", None, json!({"from_timestamp": "yesterday"}))
        .await;
    assert_eq!(bad["body"]["success"], false);
}

#[tokio::test]
async fn replayed_changes_carry_the_timestamps_they_were_pushed_with() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let c = emulator.conversation(&alice, &["bob"]).await;
    // Timestamps have millisecond resolution: let the conversation's create be strictly
    // older than the sockets, so the replay below starts after it.
    emulator.advance_clock_ms(5).await;
    let mut phone = emulator.ws(&bob).await;
    let mut laptop = emulator.ws(&bob).await;
    let (subscribed, _) = laptop
        .request("Presence.subscribe", None, Value::Null)
        .await;
    let from = subscribed["timestamp"].as_str().unwrap().to_owned();
    drop(laptop);
    emulator.message(&alice, &c, "one").await;
    let live = phone.drain(QUIET).await;
    // The laptop replays later; its packets carry the times the phone saw them with.
    emulator.advance_clock_ms(5).await;
    let mut laptop = emulator.ws(&bob).await;
    let (_, replayed) = laptop
        .request("Event.replay", None, json!({"from_timestamp": from}))
        .await;
    let stamps = |packets: &[Value]| -> Vec<(String, String)> {
        packets
            .iter()
            .map(|p| {
                (
                    p["body"].to_string(),
                    p["timestamp"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(stamps(&replayed), stamps(&live));
}

#[tokio::test]
async fn a_response_is_never_stamped_later_than_the_changes_its_socket_delivered() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let mut ws = emulator.ws(&bob).await;
    emulator.conversation(&alice, &["bob"]).await;
    let change = ws.recv().await;
    emulator.advance_clock_ms(5).await;
    // A replay from the last timestamp seen must cover whatever was still queued: so a
    // response carries the time of the last change delivered, not the time it was written.
    let (response, _) = ws.request("Counter.read", None, Value::Null).await;
    assert_eq!(response["timestamp"], change["timestamp"]);
}

#[tokio::test]
async fn a_replay_reaching_past_what_is_kept_fails_instead_of_answering_in_part() {
    let emulator = spawn_with(|s| s.replay_entries_per_user = 6).await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let carol = emulator.login("carol").await;
    let quiet = emulator.conversation(&alice, &["carol"]).await;
    let mut carol_ws = emulator.ws(&carol).await;
    let (first, _) = carol_ws
        .request("Presence.subscribe", None, Value::Null)
        .await;
    let carol_from = first["timestamp"].as_str().unwrap().to_owned();
    drop(carol_ws);
    let for_carol = emulator.message(&alice, &quiet, "for carol").await;

    let mut bob_ws = emulator.ws(&bob).await;
    let (first, _) = bob_ws
        .request("Presence.subscribe", None, Value::Null)
        .await;
    let bob_from = first["timestamp"].as_str().unwrap().to_owned();
    drop(bob_ws);
    // A busy conversation: 1 create and 2 changes per message for bob, 6 kept.
    let busy = emulator.conversation(&alice, &["bob"]).await;
    for i in 0..5 {
        emulator.message(&alice, &busy, &format!("busy {i}")).await;
    }
    let mut bob_ws = emulator.ws(&bob).await;
    let (response, replayed) = bob_ws
        .request("Event.replay", None, json!({"from_timestamp": bob_from}))
        .await;
    assert!(replayed.is_empty(), "nothing partial: {replayed:?}");
    assert_eq!(response["body"]["success"], false);
    assert_eq!(response["body"]["data"]["id"], "invalid_property");
    assert_eq!(
        response["body"]["data"]["data"]["property"],
        "from_timestamp"
    );
    // The socket goes on: live changes still arrive.
    emulator
        .message(&alice, &busy, "after the failed replay")
        .await;
    assert_eq!(changes(&bob_ws.drain(QUIET).await).len(), 2);
    // Carol's history was not pushed out by bob's busy conversation.
    let mut carol_ws = emulator.ws(&carol).await;
    let (response, replayed) = carol_ws
        .request("Event.replay", None, json!({"from_timestamp": carol_from}))
        .await;
    assert_eq!(response["body"]["success"], true);
    let replayed = changes(&replayed);
    let message = (
        "create".to_owned(),
        "Message".to_owned(),
        for_carol["id"].as_str().unwrap().to_owned(),
    );
    assert!(replayed.contains(&message), "{replayed:?}");
}

#[tokio::test]
async fn presence_sync_always_answers_a_changes_array() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let _bob_ws = emulator.ws(&bob).await;
    let mut ws = emulator.ws(&alice).await;
    let (since, _) = ws
        .request(
            "Presence.sync",
            None,
            json!({"since": "2026-01-01T00:00:00.000Z"}),
        )
        .await;
    assert_eq!(since["body"]["data"], json!({"changes": []}));
    let (ids, _) = ws
        .request(
            "Presence.sync",
            None,
            json!({"ids": ["layer:///identities/bob"]}),
        )
        .await;
    let change = &ids["body"]["data"]["changes"][0];
    assert_eq!(change["object"]["type"], "Identity");
    assert_eq!(
        change["data"][0],
        json!({"operation": "set", "property": "presence.status", "value": "available"})
    );
}

#[tokio::test]
async fn typing_indicators_reach_the_others_but_not_the_sender() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let c = emulator.conversation(&alice, &["bob"]).await;
    let mut alice_ws = emulator.ws(&alice).await;
    let mut bob_ws = emulator.ws(&bob).await;
    alice_ws
        .send_text(json!({"type": "signal", "body": {"type": "typing_indicator", "object": {"id": c["id"]}, "data": {"action": "started"}}}).to_string())
        .await;
    let packet = bob_ws.recv().await;
    assert_eq!(packet["type"], "signal");
    assert_eq!(packet["counter"], 0, "signals are numbered too");
    assert_eq!(packet["body"]["data"]["action"], "started");
    assert_eq!(
        packet["body"]["data"]["sender"]["id"],
        "layer:///identities/alice"
    );
    // Alice hears of bob coming online, but not of her own typing.
    let at_alice = alice_ws.drain(QUIET).await;
    assert!(
        at_alice.iter().all(|p| p["type"] != "signal"),
        "{at_alice:?}"
    );
}

#[tokio::test]
async fn mark_all_read_sends_the_operation_packet() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let c = emulator.conversation(&alice, &["bob"]).await;
    emulator.message(&alice, &c, "one").await;
    let mut alice_ws = emulator.ws(&alice).await;
    let response = emulator
        .post(
            &format!("{}/mark_all_read", path_of(&c)),
            &bob,
            json!({"position": 1}),
        )
        .await;
    assert_eq!(response.status(), 204);
    let packet = alice_ws.recv().await;
    assert_eq!(packet["type"], "operation");
    assert_eq!(packet["body"]["method"], "Conversation.mark_all_read");
    assert_eq!(packet["body"]["data"]["position"], 1);
    assert_eq!(
        packet["body"]["data"]["identity"]["id"],
        "layer:///identities/bob"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_after_the_send_timeout() {
    let emulator = spawn_with(|s| s.socket_send_timeout_ms = 300).await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let c = emulator.conversation(&alice, &["bob"]).await;
    // Bob's client freezes: it never reads again.
    let _frozen = emulator.ws_with_small_receive_buffer(&bob).await;
    // Whether the emulator still counts a socket of bob's as open, asked without touching it
    // (by carol, who is not in the conversation and so not flooded).
    let carol = emulator.login("carol").await;
    let mut carol_ws = emulator.ws(&carol).await;
    let mut bob_status = async || {
        let (synced, _) = carol_ws
            .request(
                "Presence.sync",
                None,
                json!({"ids": ["layer:///identities/bob"]}),
            )
            .await;
        synced["body"]["data"]["changes"][0]["data"][0]["value"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(bob_status().await, "available");
    // Enough to fill the TCP buffers (the kernel may give the sender 4 MiB) and actix-ws's
    // 32 frames, yet far from the emulator's own queue of 1 024 packets (which would close
    // the socket anyway): 100 messages of 64 parts of 2 000 bytes, 2 packets each.
    let path = format!("{}/messages", path_of(&c));
    let part = json!({"mime_type": "text/plain", "body": "x".repeat(2000)});
    let body = json!({"parts": vec![part; 64]});
    for _ in 0..100 {
        assert_eq!(
            emulator.post(&path, &alice, body.clone()).await.status(),
            201
        );
    }
    // The socket's task gave up on the write and closed: bob is offline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while bob_status().await != "offline" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the socket of a client that stopped reading is still open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sockets_past_the_caps_per_session_and_per_user_are_closed_with_the_reason() {
    let emulator = spawn_with(|s| {
        s.max_sockets_per_session = 2;
        s.max_sockets_per_user = 3;
    })
    .await;
    let tab = emulator.login("alice").await;
    let phone = emulator.login("alice").await;
    let mut first = emulator.ws(&tab).await;
    let _second = emulator.ws(&tab).await;
    let mut third = emulator.ws(&tab).await;
    let (code, reason) = third.close_frame().await.unwrap();
    assert_eq!(code, 1008);
    assert!(reason.contains("max_sockets_per_session"), "{reason}");
    let _fourth = emulator.ws(&phone).await;
    let mut fifth = emulator.ws(&phone).await;
    let (code, reason) = fifth.close_frame().await.unwrap();
    assert_eq!(code, 1008);
    assert!(reason.contains("max_sockets_per_user"), "{reason}");
    // The sockets already open are untouched, and a closed one frees its place.
    let (pong, _) = first.request("Presence.subscribe", None, Value::Null).await;
    assert_eq!(pong["body"]["success"], true);
    first.stream.close(None).await.unwrap();
    assert!(first.close_frame().await.is_some());
    // The emulator forgot it before it answered the close, so its place is free again.
    let mut again = emulator.ws(&tab).await;
    let (pong, _) = again.request("Presence.subscribe", None, Value::Null).await;
    assert_eq!(pong["body"]["success"], true);
}

/// The `presence.status` values pushed about `user` in `packets`.
fn presence_of(user: &str, packets: &[Value]) -> Vec<String> {
    let id = format!("layer:///identities/{user}");
    packets
        .iter()
        .filter(|p| p["type"] == "change" && p["body"]["object"]["id"] == id.as_str())
        .map(|p| {
            let body = &p["body"];
            assert_eq!(body["operation"], "update");
            assert_eq!(body["object"]["type"], "Identity");
            let ops = body["data"].as_array().unwrap();
            assert!(
                ops.iter()
                    .any(|op| op["property"] == "presence.last_seen_at" && op["value"].is_string()),
                "{body}"
            );
            ops.iter()
                .find(|op| op["property"] == "presence.status")
                .map(|op| op["value"].as_str().unwrap().to_owned())
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn presence_changes_are_pushed_to_every_follower_and_no_one_else() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let carol = emulator.login("carol").await;
    let dave = emulator.login("dave").await;
    // Bob follows alice by sharing a conversation, dave by choice; carol does not.
    emulator.conversation(&alice, &["bob"]).await;
    let follow = emulator
        .send(Method::PUT, "/following/users/alice", &dave, None)
        .await;
    assert_eq!(follow.status(), 204);
    let mut bob_ws = emulator.ws(&bob).await;
    let mut carol_ws = emulator.ws(&carol).await;
    let mut dave_ws = emulator.ws(&dave).await;

    let mut alice_ws = emulator.ws(&alice).await;
    assert_eq!(
        presence_of("alice", &bob_ws.drain(QUIET).await),
        ["available"]
    );
    assert_eq!(
        presence_of("alice", &dave_ws.drain(QUIET).await),
        ["available"]
    );
    let busy = json!([{"operation": "set", "property": "status", "value": "busy"}]);
    alice_ws
        .request("Presence.update", None, busy.clone())
        .await;
    assert_eq!(presence_of("alice", &bob_ws.drain(QUIET).await), ["busy"]);
    assert_eq!(presence_of("alice", &dave_ws.drain(QUIET).await), ["busy"]);
    // Nothing changed, nothing pushed; a second socket of hers changes nothing either.
    alice_ws.request("Presence.update", None, busy).await;
    let mut alice_tab = emulator.ws(&alice).await;
    assert!(presence_of("alice", &bob_ws.drain(QUIET).await).is_empty());
    // Invisible shows as offline.
    let invisible = json!([{"operation": "set", "property": "status", "value": "invisible"}]);
    alice_ws.request("Presence.update", None, invisible).await;
    assert_eq!(
        presence_of("alice", &bob_ws.drain(QUIET).await),
        ["offline"]
    );
    let auto = json!([{"operation": "set", "property": "status", "value": "auto"}]);
    alice_ws.request("Presence.update", None, auto).await;
    assert_eq!(
        presence_of("alice", &bob_ws.drain(QUIET).await),
        ["available"]
    );
    // Her last socket closing takes her offline.
    alice_ws.stream.close(None).await.unwrap();
    assert!(alice_ws.close_frame().await.is_some());
    assert!(presence_of("alice", &bob_ws.drain(QUIET).await).is_empty());
    alice_tab.stream.close(None).await.unwrap();
    assert!(alice_tab.close_frame().await.is_some());
    assert_eq!(
        presence_of("alice", &bob_ws.drain(QUIET).await),
        ["offline"]
    );
    assert_eq!(
        presence_of("alice", &dave_ws.drain(QUIET).await),
        ["offline", "available", "offline"],
        "an explicit follower hears it all"
    );
    assert!(
        presence_of("alice", &carol_ws.drain(QUIET).await).is_empty(),
        "carol does not follow alice"
    );
}

#[tokio::test]
async fn presence_sync_since_returns_what_changed_for_followed_identities() {
    let emulator = spawn_emulator().await;
    let alice = emulator.login("alice").await;
    let bob = emulator.login("bob").await;
    let carol = emulator.login("carol").await;
    emulator.conversation(&alice, &["bob"]).await;
    // A time before alice and carol come online, as a replaying client would hold.
    let mut probe = emulator.ws(&bob).await;
    let (before, _) = probe.request("Presence.subscribe", None, Value::Null).await;
    let since = before["timestamp"].as_str().unwrap().to_owned();
    drop(probe);
    emulator.advance_clock_ms(5).await;
    let _alice_ws = emulator.ws(&alice).await;
    let _carol_ws = emulator.ws(&carol).await;

    let mut bob_ws = emulator.ws(&bob).await;
    let (synced, _) = bob_ws
        .request("Presence.sync", None, json!({"since": since}))
        .await;
    let changes = synced["body"]["data"]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "alice only, not carol: {changes:?}");
    assert_eq!(changes[0]["object"]["id"], "layer:///identities/alice");
    assert_eq!(changes[0]["data"][0]["value"], "available");
    let (later, _) = bob_ws
        .request(
            "Presence.sync",
            None,
            json!({"since": "2999-01-01T00:00:00.000Z"}),
        )
        .await;
    assert_eq!(later["body"]["data"], json!({"changes": []}));
    let (bad, _) = bob_ws
        .request("Presence.sync", None, json!({"since": "yesterday"}))
        .await;
    assert_eq!(bad["body"]["success"], false);
    assert_eq!(bad["body"]["data"]["data"]["property"], "since");
}
