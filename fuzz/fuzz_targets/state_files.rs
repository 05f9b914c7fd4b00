#![no_main]
//! `make fuzz`: see mcpshare::fuzzing::state_files.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mcpshare::fuzzing::state_files(data));
