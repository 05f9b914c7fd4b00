#![no_main]
//! `make fuzz`: see mcpshare::fuzzing::chunked_body.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mcpshare::fuzzing::chunked_body(data));
