#![no_main]
//! `make fuzz`: see mcpshare::fuzzing::jsonrpc_lines.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mcpshare::fuzzing::jsonrpc_lines(data));
