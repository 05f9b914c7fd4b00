#![no_main]
//! `make fuzz`: see mcpshare::fuzzing::http_response.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mcpshare::fuzzing::http_response(data));
