//! Any header: no panic, and a trace ID is only ever read whole out of a
//! header that has it in place.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesh_metrics::trace::TraceId;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    if let Ok(id) = TraceId::from_traceparent(header) {
        let trimmed = header.trim_matches(|c| c == ' ' || c == '\t');
        assert_eq!(trimmed.get(3..35), Some(id.to_string().as_str()), "{header:?}");
        assert_eq!(TraceId::from_hex(&id.to_string()), Ok(id));
    }
    let _ = TraceId::from_hex(header);
});
