//! commsNotifications webhook bodies, parsed on their own: any bytes parse or fail cleanly, the
//! normalised ids are the raw ids lower-cased without dashes, and parsing is deterministic.
//! Routing with calls waiting is the `hub` target's job.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recording_status::notification::{MAX_NOTIFICATION_BYTES, parse_notifications};

fn normalize(id: &str) -> String {
    id.chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fuzz_target!(|body: &[u8]| {
    let Ok(parsed) = parse_notifications(body) else {
        return;
    };
    assert!(body.len() <= MAX_NOTIFICATION_BYTES);
    for update in &parsed.updates {
        assert_eq!(
            update.normalized_call_id(),
            update.call_id.as_deref().map(normalize)
        );
        assert_eq!(
            update.normalized_operation_id(),
            update.operation_id.as_deref().map(normalize)
        );
        // A call id only ever comes from a path: exactly one segment.
        if let Some(id) = &update.call_id {
            assert!(!id.is_empty() && id != "." && id != "..", "{id:?}");
            assert!(!id.contains(['/', '?', '#']), "{id:?}");
        }
        let _ = format!("{update:?}");
    }
    for call in &parsed.calls {
        let _ = (
            call.is_terminated(),
            call.normalized_call_id(),
            format!("{call:?}"),
        );
    }
    assert_eq!(parse_notifications(body).ok(), Some(parsed));
});
