//! Every call into the OS that std does not offer, behind safe wrappers.
//! This is the only module allowed `unsafe`; each block says why it is sound.
//! It never decides whom to signal: callers confirm a pid's identity first.
//!
//! `unix.rs` and `windows.rs` hold the calls (signals, descriptors, jobs);
//! `linux.rs`, `macos.rs` and `other.rs` what the OS says of a process
//! (start time, parent, group, executable). The parsing they share is
//! here, pure, and tested on every host.
#![allow(unsafe_code)]

mod limits;
pub mod procs;
pub use limits::{limit_data, user_scopes};

use std::path::{Path, PathBuf};

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as imp;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android"))]
use linux as process;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
use macos as process;
#[cfg(all(
    unix,
    not(any(target_os = "linux", target_os = "android", target_os = "macos"))
))]
mod other;
#[cfg(all(
    unix,
    not(any(target_os = "linux", target_os = "android", target_os = "macos"))
))]
use other as process;
#[cfg(windows)]
use windows as process;

pub use imp::{
    PipeWatch, child_exited, close_inherited, contain_child, default_signals, detach,
    die_with_parent, nothing_to_read, on_network_fs, on_termination, open_descriptors, pid_alive,
    raise_fd_limit, random_bytes, readable_before_stdin, redirect_stdout_stderr, signal,
    signal_group, stderr_is, stdout_to_stderr, uid, widen_backlog,
};

/// The signals mcpshare sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
}

/// The identity of a running process, enough to tell a reused pid apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: u32,
    /// Start stamp as [`start_time`] gives it, 0 if unknown.
    pub start_time: u64,
}

/// Parse the start time (field 22) out of a `/proc/<pid>/stat` line. The
/// command name (field 2) may hold spaces and `)`, so fields are counted
/// from the last `)`.
pub fn parse_stat_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// Parse the parent pid (field 4) and process group (field 5) out of a stat line.
pub fn parse_stat_parent_group(stat: &str) -> Option<(u32, u32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_ascii_whitespace().skip(1);
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

/// Parse the session id (field 6) out of a stat line.
pub fn parse_stat_session(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(3)?.parse().ok()
}

/// The path in `/proc/PID/exe` of a file unlinked or renamed over since it
/// was started: the link less its " (deleted)" suffix. None when there is
/// no such suffix (or the path is not UTF-8: left as the kernel wrote it).
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
fn without_deleted_suffix(link: &Path) -> Option<PathBuf> {
    let s = link.to_str()?.strip_suffix(" (deleted)")?;
    (!s.is_empty()).then(|| PathBuf::from(s))
}

/// A macOS start time (`pbi_start_tvsec`, `pbi_start_tvusec`) as one
/// number: microseconds since the Unix epoch, ordered like the times.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn micros_since_epoch(secs: u64, micros: u64) -> u64 {
    secs.saturating_mul(1_000_000).saturating_add(micros)
}

/// The pids in the first `got` entries of `buf` (what `proc_listallpids`
/// returned: a count, or -1), positive only, sorted, each once.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn listed_pids(buf: &[i32], got: i32) -> Vec<u32> {
    let n = usize::try_from(got).unwrap_or(0).min(buf.len());
    let mut pids: Vec<u32> = buf[..n]
        .iter()
        .filter_map(|&p| u32::try_from(p).ok().filter(|p| *p > 0))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The path a C call wrote into `buf`, returning `n` (bytes written, or
/// <= 0 on failure): up to `n` bytes, cut at the first NUL.
#[cfg(unix)]
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn path_from_c_buf(buf: &[u8], n: i32) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let n = usize::try_from(n).ok().filter(|n| *n > 0)?.min(buf.len());
    let bytes = &buf[..n];
    let bytes = bytes.split(|b| *b == 0).next().unwrap_or(bytes);
    (!bytes.is_empty()).then(|| PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
}

/// Has `pid` exited without being reaped? False where the OS does not tell.
pub fn is_zombie(pid: u32) -> bool {
    process::is_zombie(pid)
}

/// The start time of `pid`, or None where the OS does not tell (or it is
/// gone). A stamp to compare with another taken on the same machine, never
/// a date: clock ticks since boot on Linux, microseconds since the epoch
/// on macOS, a FILETIME on Windows. A later process has a larger stamp.
pub fn start_time(pid: u32) -> Option<u64> {
    process::start_time(pid)
}

/// (parent pid, process group) of `pid`, where the OS tells.
pub fn parent_and_group(pid: u32) -> Option<(u32, u32)> {
    process::parent_and_group(pid)
}

/// The session of `pid`, where the OS tells.
pub fn session(pid: u32) -> Option<u32> {
    process::session(pid)
}

/// Every pid the OS lists now (none where it does not tell), sorted.
pub fn all_pids() -> Vec<u32> {
    process::all_pids()
}

/// The executable of `pid`, where the OS tells. A file replaced since the
/// process started (`make install` renames a new one over it) still reads
/// as the path it was started from, so a reinstalled daemon is recognised.
pub fn exe(pid: u32) -> Option<PathBuf> {
    process::exe(pid)
}

/// Is `id` still the same process (alive, and where known, same start time)?
pub fn same_process(id: &ProcessId) -> bool {
    if !pid_alive(id.pid) {
        return false;
    }
    match (id.start_time, start_time(id.pid)) {
        (0, _) | (_, None) => true,
        (want, Some(now)) => want == now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_spaces_and_parens_in_the_name() {
        let line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_stat_start_time(line), Some(98765));
        assert_eq!(parse_stat_parent_group(line), Some((1, 4242)));
        assert_eq!(parse_stat_session(line), Some(4242));
        let led = "77 (sleep) S 76 76 50 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 555 0 0";
        assert_eq!(parse_stat_parent_group(led), Some((76, 76)));
        assert_eq!(parse_stat_session(led), Some(50));
    }

    #[test]
    fn stat_parsing_rejects_garbage() {
        assert_eq!(parse_stat_start_time("garbage"), None);
        assert_eq!(parse_stat_start_time("1 (x) S 1"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn own_process_is_identified() {
        let pid = std::process::id();
        let me = ProcessId {
            pid,
            start_time: start_time(pid).unwrap_or(0),
        };
        assert!(me.start_time > 0);
        assert!(same_process(&me));
        let reused = ProcessId {
            pid: me.pid,
            start_time: me.start_time + 1,
        };
        assert!(!same_process(&reused));
    }

    #[test]
    fn a_replaced_executable_reads_as_its_path() {
        assert_eq!(
            without_deleted_suffix(Path::new("/usr/local/bin/mcpshare (deleted)")),
            Some(PathBuf::from("/usr/local/bin/mcpshare"))
        );
        assert_eq!(
            without_deleted_suffix(Path::new("/opt/my tool (x) (deleted)")),
            Some(PathBuf::from("/opt/my tool (x)"))
        );
        assert_eq!(without_deleted_suffix(Path::new("/usr/bin/mcpshare")), None);
        assert_eq!(without_deleted_suffix(Path::new(" (deleted)")), None);
        assert_eq!(without_deleted_suffix(Path::new("/bin/x (deleted) ")), None);
    }

    #[test]
    fn macos_start_times_order_like_the_times() {
        assert_eq!(micros_since_epoch(0, 0), 0);
        assert_eq!(
            micros_since_epoch(1_700_000_000, 250),
            1_700_000_000_000_250
        );
        assert!(micros_since_epoch(10, 999_999) < micros_since_epoch(11, 0));
        assert_eq!(micros_since_epoch(u64::MAX, 1), u64::MAX);
    }

    #[test]
    fn listed_pids_keep_only_what_the_call_returned() {
        let buf = [30, 1, 0, -1, 30, 7, 99, 98];
        assert_eq!(listed_pids(&buf, 6), vec![1, 7, 30]);
        assert_eq!(listed_pids(&buf, -1), Vec::<u32>::new());
        assert_eq!(listed_pids(&buf, 100), vec![1, 7, 30, 98, 99]);
    }

    #[cfg(unix)]
    #[test]
    fn c_paths_stop_at_the_count_or_the_first_nul() {
        let mut buf = [0u8; 16];
        buf[..9].copy_from_slice(b"/bin/true");
        assert_eq!(path_from_c_buf(&buf, 9), Some(PathBuf::from("/bin/true")));
        assert_eq!(path_from_c_buf(&buf, 16), Some(PathBuf::from("/bin/true")));
        assert_eq!(path_from_c_buf(&buf, 4), Some(PathBuf::from("/bin")));
        assert_eq!(path_from_c_buf(&buf, 0), None);
        assert_eq!(path_from_c_buf(&buf, -1), None);
        assert_eq!(path_from_c_buf(&[0u8; 4], 4), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn own_process_facts_are_read() {
        let me = std::process::id();
        assert_eq!(exe(me), std::env::current_exe().ok());
        assert!(all_pids().contains(&me));
        assert!(!is_zombie(me));
        assert!(parent_and_group(me).is_some() && session(me).is_some());
    }
}
