//! The identity provider's body extractor: the same bytes as a JSON body and as a form.
//!
//! Beyond "never panics": a form that parses is an object of strings and one-level groups of
//! strings, and that object, sent as JSON, parses to itself (a form can't smuggle a repeated
//! key past the JSON rules).

#![no_main]

use layer_idp::fuzzing::{parse_form, parse_json};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let _ = parse_json(data);
    if let Ok(form) = parse_form(data) {
        let Value::Object(fields) = &form else {
            panic!("a form parsed to a non-object: {form}");
        };
        for value in fields.values() {
            match value {
                Value::String(_) => {}
                Value::Object(group) => assert!(group.values().all(Value::is_string)),
                other => panic!("a form field parsed to {other}"),
            }
        }
        let json = serde_json::to_vec(&form).expect("serialises");
        assert_eq!(parse_json(&json).ok(), Some(form));
    }
});
