//! What Linux says of a process, read from `/proc/PID/stat` and
//! `/proc/PID/exe`. Reads only: nothing here signals anything.

use super::{
    parse_stat_parent_group, parse_stat_session, parse_stat_start_time, without_deleted_suffix,
};
use std::path::PathBuf;

fn read_stat(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()
}

pub fn is_zombie(pid: u32) -> bool {
    read_stat(pid).is_some_and(|s| {
        s.rfind(')')
            .is_some_and(|i| s[i + 1..].trim_start().starts_with('Z'))
    })
}

/// Clock ticks since boot (`/proc/PID/stat` field 22).
pub fn start_time(pid: u32) -> Option<u64> {
    parse_stat_start_time(&read_stat(pid)?)
}

pub fn parent_and_group(pid: u32) -> Option<(u32, u32)> {
    parse_stat_parent_group(&read_stat(pid)?)
}

pub fn session(pid: u32) -> Option<u32> {
    parse_stat_session(&read_stat(pid)?)
}

pub fn all_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids
}

/// `/proc/PID/exe`. The kernel appends " (deleted)" once the file was
/// unlinked or renamed over (`make install`); that suffix is dropped, so a
/// reinstalled daemon still names the path it was started from. A file
/// whose name really ends so exists, and is left as it is.
pub fn exe(pid: u32) -> Option<PathBuf> {
    let link = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    if link.exists() {
        return Some(link);
    }
    Some(without_deleted_suffix(&link).unwrap_or(link))
}
