//! Time stamps as hbcp's files write them: RFC 3339, UTC, whole seconds (plan, manifest and
//! report headers, the `started`/`finished` of a job).

use std::time::SystemTime;

/// Current time as RFC 3339 (UTC, seconds).
pub fn now_rfc3339() -> String {
    humanish_rfc3339(SystemTime::now())
}

/// Format a time as RFC 3339 (UTC, seconds).
pub fn humanish_rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(humanish_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            humanish_rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_000_000)),
            "2026-11-18T11:06:40Z"
        );
        assert_eq!(
            humanish_rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }
}
