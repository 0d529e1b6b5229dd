//! The emulator's request parsers, re-exported for the fuzz targets in `fuzz/` (through
//! [`crate::fuzzing`]). Not an API: nothing else should call these from outside the emulator.

pub use super::input::{
    MAX_METADATA_DEPTH, MAX_METADATA_KEY_BYTES, PatchOp, check_metadata, conversation_patch,
    mark_all_read_position, new_conversation, new_message, receipt,
};
pub use super::platform::input::{
    block_target, identity_fields, identity_patch, sender, user_patch,
};
pub use super::websocket::{Frame, Request, decode_frame, presence_status};
