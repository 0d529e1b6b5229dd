//! Layer-Patch paths into metadata: escaping keys, setting and deleting nested values.

use super::*;

/// Layer-Patch splits property paths on `.`; a literal dot in a key is escaped as `\.`.
pub fn escape_patch_key(key: &str) -> String {
    key.replace('\\', "\\\\").replace('.', "\\.")
}

/// `metadata`, or `metadata.a.b` with dots inside keys escaped.
pub(super) fn metadata_property(path: &[String]) -> String {
    let mut property = String::from("metadata");
    for key in path {
        property.push('.');
        property.push_str(&escape_patch_key(key));
    }
    property
}

pub(super) fn set_path(map: &mut Map<String, Value>, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = map;
    for key in parents {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        current = next;
    }
    current.insert(last.clone(), value);
}

pub(super) fn delete_path(map: &mut Map<String, Value>, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = map;
    for key in parents {
        match current.get_mut(key) {
            Some(Value::Object(next)) => current = next,
            _ => return,
        }
    }
    current.remove(last);
}
