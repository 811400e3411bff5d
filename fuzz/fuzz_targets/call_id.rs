//! Call ids: whatever is accepted becomes exactly one URL path segment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recording_status::{CallId, Endpoint};

fuzz_target!(|id: &str| {
    if let Ok(call) = CallId::new(id) {
        let segment = call.path_segment();
        assert!(!segment.contains(['/', '?', '#']));
        assert!(segment != "." && segment != "..");
        let url = Endpoint::default().update_recording_status_url(&call);
        let uri: http::Uri = url
            .parse()
            .expect("a valid call id always makes a valid URL");
        assert_eq!(uri.path().split('/').count(), 6, "{url}");
    }
});
