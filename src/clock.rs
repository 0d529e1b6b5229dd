//! Wall-clock helpers. Times are stored as Unix seconds (UTC) and shown as RFC 3339.

/// Seconds since the Unix epoch, UTC.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `2026-11-21T20:45:35Z` for a Unix time; empty for one out of range.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
