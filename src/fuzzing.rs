//! The parsers that face the internet, in one place for the fuzz targets in `fuzz/` and the
//! property tests. Not an API: each re-exported function keeps its home module's contract.
//!
//! Already public elsewhere, and fuzzed from there: [`crate::domain`], [`crate::app_id`],
//! [`crate::identity_token`].

pub use crate::idp::extract::{parse_form, parse_json};
pub use crate::idp::import::{CheckedLine, LinePassword, check_line};
pub use crate::mock_layer::fuzzing::*;

#[cfg(test)]
mod properties;
