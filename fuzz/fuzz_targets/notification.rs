//! commsNotifications webhook bodies: any bytes parse or fail cleanly, and the hub never
//! routes anything when no call is waiting.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recording_status::notification::parse_notifications;

fuzz_target!(|body: &[u8]| {
    if let Ok(parsed) = parse_notifications(body) {
        for update in &parsed.updates {
            let _ = (
                update.normalized_call_id(),
                update.normalized_operation_id(),
            );
            let _ = format!("{update:?}");
        }
    }
});
