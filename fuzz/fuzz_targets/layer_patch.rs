//! The emulator's Layer-Patch parsers (a conversation's, an identity's, a user's), and the
//! other request bodies the Client and Platform APIs read, on any JSON.
//!
//! Beyond "never panics": a conversation patch that parses stays within the metadata bounds
//! (a path of at most `MAX_METADATA_DEPTH` non-empty keys of at most
//! `MAX_METADATA_KEY_BYTES`), so nothing applying it can recurse deeply.

#![no_main]

use layer_idp::fuzzing::{
    MAX_METADATA_DEPTH, MAX_METADATA_KEY_BYTES, PatchOp, block_target, check_metadata,
    conversation_patch, identity_fields, identity_patch, mark_all_read_position, receipt, sender,
    user_patch,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn bounded(path: &[String]) {
    assert!(
        path.len() <= MAX_METADATA_DEPTH,
        "a path of {} keys",
        path.len()
    );
    for key in path {
        assert!(
            !key.is_empty() && key.len() <= MAX_METADATA_KEY_BYTES,
            "key {key:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(ops) = conversation_patch(&body, 25) {
        for op in &ops {
            match op {
                PatchOp::SetMetadata(path, _) => bounded(path),
                PatchOp::DeleteMetadata(path) => {
                    assert!(!path.is_empty());
                    bounded(path);
                }
                PatchOp::SetParticipants(users) => assert!(users.len() <= 25),
                PatchOp::AddParticipant(_) | PatchOp::RemoveParticipant(_) => {}
            }
        }
    }
    let _ = identity_patch(&body);
    let _ = user_patch(&body);
    let _ = identity_fields(&body);
    let _ = sender(&body);
    let _ = block_target(&body);
    let _ = receipt(&body);
    let _ = mark_all_read_position(&body);
    if let Value::Object(metadata) = &body {
        let _ = check_metadata(metadata);
    }
    // Every error renders as Layer's error body.
    if let Err(e) = conversation_patch(&body, 25) {
        let _ = e.body();
    }
});
