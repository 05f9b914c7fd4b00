//! Process facts on a unix that is neither Linux nor macOS: not read, so
//! every answer is "unknown". Callers then skip the start-time and
//! executable checks (the lock stays the truth) and name no survivors.

use std::path::PathBuf;

pub fn is_zombie(_pid: u32) -> bool {
    false
}

pub fn start_time(_pid: u32) -> Option<u64> {
    None
}

pub fn parent_and_group(_pid: u32) -> Option<(u32, u32)> {
    None
}

pub fn session(_pid: u32) -> Option<u32> {
    None
}

pub fn all_pids() -> Vec<u32> {
    Vec::new()
}

pub fn exe(_pid: u32) -> Option<PathBuf> {
    None
}
