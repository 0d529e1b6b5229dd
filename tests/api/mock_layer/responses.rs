//! Response summaries: answers to XDK messages (`response-v2`) kept as a summary part on the
//! answered message, pushed to Client API 3.0 sockets, loaded and replayed with it.

use serde_json::{Value, json};

use super::helpers::{Ws, path_of, spawn_emulator};

const SUMMARY_MIME: &str = "application/vnd.layer.responsesummary-v2+json;role=response_summary;parent-node-id=choice-node";

/// A response message's parts: a `response-v2` root answering `message`, and its status text.
fn response_parts(message: &Value, changes: Value) -> Value {
    json!([
        {
            "mime_type": "application/vnd.layer.response-v2+json;role=root",
            "body": json!({
                "response_to": message["id"],
                "response_to_node_id": "choice-node",
                "changes": changes,
            }).to_string(),
        },
        {
            "mime_type": "application/vnd.layer.status+json;role=status_message",
            "body": json!({"text": "bob selected"}).to_string(),
        },
    ])
}

fn change(operation: &str, kind: &str, value: &str, id: &str) -> Value {
    json!({"operation": operation, "type": kind, "name": "selection", "value": value, "id": id})
}

fn summaries(message: &Value) -> Vec<Value> {
    message["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["mime_type"] == SUMMARY_MIME)
        .cloned()
        .collect()
}

fn body_of(part: &Value) -> Value {
    serde_json::from_str(part["body"].as_str().unwrap()).unwrap()
}

/// Packets until one matches `until` (included).
async fn until(ws: &mut Ws, until: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let packet = ws.recv().await;
        let done = until(&packet);
        seen.push(packet);
        if done {
            return seen;
        }
    }
}

fn is_create_of(packet: &Value, message: &Value) -> bool {
    packet["body"]["operation"] == "create" && packet["body"]["object"]["id"] == message["id"]
}

fn touches_parts(packet: &Value) -> bool {
    packet["body"]["object"]["type"] == "MessagePart"
        || packet["body"]["data"]
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op["property"] == "parts"))
}

#[tokio::test]
async fn a_response_creates_then_updates_the_summary_for_xdk_sockets_loads_and_replay() {
    let em = spawn_emulator().await;
    let alice = em.login("alice").await;
    let bob = em.login("bob").await;
    let mut xdk = em.ws_with_protocol(&alice, "layer-3.0").await;
    let mut websdk = em.ws_with_protocol(&alice, "layer-2.0").await;
    let conversation = em.conversation(&alice, &["alice", "bob"]).await;
    let messages = format!("{}/messages", path_of(&conversation));
    let choice = em
        .post(&messages, &alice, json!({"parts": [{
            "mime_type": "application/vnd.layer.choice-v1+json;role=root;node-id=choice-node",
            "body": json!({"label": "Lunch?", "choices": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}]}).to_string(),
        }]}))
        .await;
    assert_eq!(choice.status(), 201);
    let choice: Value = choice.json().await.unwrap();

    // Bob's first answer creates the summary…
    let first = em
        .post(
            &messages,
            &bob,
            json!({"parts": response_parts(&choice, json!([change("add", "LWW", "b", "op1")]))}),
        )
        .await;
    assert_eq!(first.status(), 201);
    let packets = until(&mut xdk, touches_parts).await;
    let added = &packets.last().unwrap()["body"];
    assert_eq!(added["object"]["id"], choice["id"]);
    let op = &added["data"][0];
    assert_eq!(
        (op["operation"].as_str(), op["property"].as_str()),
        (Some("add"), Some("parts"))
    );
    assert_eq!(op["value"]["mime_type"], SUMMARY_MIME);
    assert_eq!(op["id"], op["value"]["id"]);
    let bob_state = json!({"layer:///identities/bob": {"selection": {"adds": [{"value": "b", "ids": ["op1"]}], "removes": []}}});
    assert_eq!(body_of(&op["value"]), bob_state);
    let summary_id = op["id"].clone();

    // …a later one updates it in place.
    let second = em
        .post(
            &messages,
            &bob,
            json!({"parts": response_parts(&choice, json!([change("add", "LWW", "a", "op2")]))}),
        )
        .await;
    assert_eq!(second.status(), 201);
    let second: Value = second.json().await.unwrap();
    let packets = until(&mut xdk, touches_parts).await;
    let updated = &packets.last().unwrap()["body"];
    assert_eq!(updated["object"]["type"], "MessagePart");
    assert_eq!(updated["object"]["id"], summary_id);
    assert_eq!(updated["data"][0]["operation"], "set");
    assert_eq!(updated["data"][0]["property"], "body");
    let latest = json!({"layer:///identities/bob": {"selection": {"adds": [{"value": "a", "ids": ["op2"]}], "removes": ["op1"]}}});
    assert_eq!(
        serde_json::from_str::<Value>(updated["data"][0]["value"].as_str().unwrap()).unwrap(),
        latest
    );

    // Single loads and lists carry exactly one summary, the latest.
    let loaded: Value = em
        .get(&path_of(&choice), &alice)
        .await
        .json()
        .await
        .unwrap();
    let found = summaries(&loaded);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], summary_id);
    assert_eq!(body_of(&found[0]), latest);
    let listed: Value = em.get(&messages, &bob).await.json().await.unwrap();
    let listed_choice = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == choice["id"])
        .unwrap();
    assert_eq!(body_of(&summaries(listed_choice)[0]), latest);

    // A Client API 2.0 socket (the WebSDK, which cannot patch parts) is not sent them: up to
    // a later message, nothing it got touched parts.
    let marker = em.message(&alice, &conversation, "after the answers").await;
    let packets = until(&mut websdk, |p| is_create_of(p, &marker)).await;
    assert!(packets.iter().any(|p| is_create_of(p, &second)));
    assert!(!packets.iter().any(touches_parts), "{packets:#?}");

    // Replay re-sends the summary's changes to 3.0 sockets only.
    let from = choice["sent_at"].as_str().unwrap();
    let mut replaying = em.ws_with_protocol(&alice, "layer-3.0").await;
    let (_, replayed) = replaying
        .request("Event.replay", None, json!({"from_timestamp": from}))
        .await;
    assert_eq!(
        replayed.iter().filter(|p| touches_parts(p)).count(),
        2,
        "{replayed:#?}"
    );
    let mut replaying = em.ws_with_protocol(&alice, "layer-2.0").await;
    let (_, replayed) = replaying
        .request("Event.replay", None, json!({"from_timestamp": from}))
        .await;
    assert!(replayed.iter().any(|p| is_create_of(p, &marker)));
    assert!(!replayed.iter().any(touches_parts));
}

#[tokio::test]
async fn an_initial_response_state_becomes_the_summary_the_message_starts_with() {
    let em = spawn_emulator().await;
    let alice = em.login("alice").await;
    let conversation = em.conversation(&alice, &["alice", "bob"]).await;
    let initial = json!([
        {"operation": "add", "type": "Set", "name": "selection", "value": "a", "id": "i1", "identity_id": "layer:///identities/alice"},
        {"operation": "add", "type": "Set", "name": "selection", "value": "b", "id": "i2", "identity_id": "layer:///identities/alice"},
    ]);
    let response = em
        .post(&format!("{}/messages", path_of(&conversation)), &alice, json!({"parts": [
            {"mime_type": "application/vnd.layer.choice-v1+json;role=root;node-id=choice-node", "body": "{}"},
            {"mime_type": "application/vnd.layer.initialresponsestate-v1+json;role=initial_response_state;parent-node-id=choice-node", "body": initial.to_string()},
        ]}))
        .await;
    assert_eq!(response.status(), 201);
    let message: Value = response.json().await.unwrap();
    let found = summaries(&message);
    assert_eq!(found.len(), 1, "{message:#}");
    assert_eq!(
        body_of(&found[0]),
        json!({"layer:///identities/alice": {"selection": {"adds": [{"value": "a", "ids": ["i1"]}, {"value": "b", "ids": ["i2"]}], "removes": []}}})
    );
}

#[tokio::test]
async fn a_response_to_a_message_elsewhere_or_with_bad_changes_is_refused_and_changes_nothing() {
    let em = spawn_emulator().await;
    let alice = em.login("alice").await;
    let here = em.conversation(&alice, &["alice", "bob"]).await;
    let elsewhere = em.conversation(&alice, &["alice", "carol"]).await;
    let answered = em.message(&alice, &elsewhere, "a question").await;
    let mut ok_answer = em.message(&alice, &here, "a question here").await;
    let cases = [
        (
            "another conversation",
            response_parts(&answered, json!([change("add", "LWW", "a", "x")])),
        ),
        (
            "an unknown type",
            response_parts(&ok_answer, json!([change("add", "Bag", "a", "x")])),
        ),
        (
            "no operation ID",
            response_parts(
                &ok_answer,
                json!([{"operation": "add", "type": "Set", "name": "s", "value": 1}]),
            ),
        ),
        ("an unknown message", {
            ok_answer["id"] = json!("layer:///messages/00000000-0000-4000-8000-000000000000");
            response_parts(&ok_answer, json!([]))
        }),
    ];
    for (case, parts) in cases {
        let response = em
            .post(
                &format!("{}/messages", path_of(&here)),
                &alice,
                json!({"parts": parts}),
            )
            .await;
        assert!(
            matches!(response.status().as_u16(), 404 | 422),
            "{case}: {}",
            response.status()
        );
        let error: Value = response.json().await.unwrap();
        assert!(
            error["code"].is_number() && error["id"].is_string(),
            "{case}: {error}"
        );
    }
    let listed: Value = em
        .get(&format!("{}/messages", path_of(&here)), &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "only the question was stored"
    );
    let loaded: Value = em
        .get(&path_of(&answered), &alice)
        .await
        .json()
        .await
        .unwrap();
    assert!(summaries(&loaded).is_empty());
}
