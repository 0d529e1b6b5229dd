//! The emulator's WebSocket text frames: the packet, then the request's data as the method
//! it names reads it (what `Connection::handle_text` does before touching the world).
//!
//! Beyond "never panics": a typing indicator that decodes names a known action, and a time
//! the socket accepts prints and parses back to itself.

#![no_main]

use layer_idp::clock::{iso_ms, parse_iso_ms};
use layer_idp::fuzzing::{Frame, decode_frame, new_conversation, new_message, presence_status};
use layer_idp::mock_layer::ids::{Kind, parse_object_id, user_id_from_identity};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fn time(value: Option<&Value>) {
    if let Some(ms) = value.and_then(Value::as_str).and_then(parse_iso_ms) {
        assert_eq!(parse_iso_ms(&iso_ms(ms)), Some(ms));
    }
}

fuzz_target!(|text: &str| {
    match decode_frame(text) {
        Frame::Request(request) => {
            let data = &request.data;
            let result = match request.method.as_str() {
                "Presence.update" => presence_status(data).map(|_| json!({})),
                "Presence.sync" => {
                    time(data.get("since"));
                    if let Some(ids) = data.get("ids").and_then(Value::as_array) {
                        for id in ids {
                            let _ = id.as_str().and_then(user_id_from_identity);
                        }
                    }
                    Ok(json!({}))
                }
                "Event.replay" => {
                    time(data.get("from_timestamp"));
                    Ok(json!({}))
                }
                "Conversation.create" => new_conversation(data, 25).map(|_| json!({})),
                "Message.create" => {
                    let _ = request
                        .object_id
                        .as_ref()
                        .and_then(Value::as_str)
                        .and_then(|id| parse_object_id(Kind::Conversations, id));
                    new_message(data).map(|_| json!({}))
                }
                _ => Ok(json!({})),
            };
            let body = match result {
                Ok(data) => data,
                Err(e) => e.body(),
            };
            let response = json!({
                "request_id": request.request_id,
                "method": request.method,
                "data": body,
            });
            let _ = serde_json::to_string(&response).unwrap();
        }
        Frame::Typing(Some((_, action))) => {
            assert!(matches!(action, "started" | "paused" | "finished"));
        }
        Frame::Typing(None) | Frame::OtherSignal | Frame::NotAnObject | Frame::UnknownType(_) => {}
    }
});
