//! An upstream's standard error: every line, stamped with the time it came,
//! goes to its log file (rotated to `<id>.log.1` past a size cap) and to a
//! ring buffer of the last lines, numbered so `mcpshare logs -f` can ask
//! for what came after; each start is marked by a line of its own; and the
//! forgetting of log files of upstreams long gone. Stderr is never treated
//! as an error signal.

use crate::pool::lock;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Lines kept in memory per upstream.
pub const RING_LINES: usize = 1000;
/// The log files of an upstream the daemon no longer runs are removed
/// once they have not been written for this long.
pub const LOG_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest line kept; the rest of a longer one is cut.
const MAX_LINE: usize = 8 * 1024;

pub struct Logbook {
    path: PathBuf,
    /// The file is rotated once it grows past this (MCPSHARE_LOG_MAX_BYTES).
    max_file_bytes: u64,
    ring: Mutex<Ring>,
    added: Condvar,
}

struct Ring {
    /// Number, unix milliseconds, text.
    lines: VecDeque<(u64, u64, String)>,
    next: u64,
    /// The log file, opened at the first line.
    file: Option<File>,
}

impl Logbook {
    /// `max_file_bytes`: the daemon's MCPSHARE_LOG_MAX_BYTES setting.
    pub fn new(path: PathBuf, max_file_bytes: u64) -> Logbook {
        Logbook {
            path,
            max_file_bytes,
            ring: Mutex::new(Ring {
                lines: VecDeque::new(),
                next: 1,
                file: None,
            }),
            added: Condvar::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&self) -> std::io::Result<File> {
        let mut o = OpenOptions::new();
        o.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        o.open(&self.path)
    }

    /// Copy `stderr` into the file and the ring until it closes.
    pub fn capture(&self, stderr: impl Read) {
        let mut reader = BufReader::new(stderr);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader
                .by_ref()
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut buf)
            {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if buf.last() != Some(&b'\n') {
                // Cut an overlong line: drop the rest of it.
                let mut rest = Vec::new();
                let _ = reader.read_until(b'\n', &mut rest);
                buf.push(b'\n');
            }
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\n', '\r'])
                .to_string();
            self.push(line);
        }
    }

    /// Add a line, stamped now, to the ring and the file; its number.
    pub fn push(&self, line: String) -> u64 {
        let at = crate::log::unix_millis();
        let mut ring = lock(&self.ring);
        let n = ring.next;
        ring.next += 1;
        if ring.file.is_none() {
            ring.file = self.open().ok();
        }
        if let Some(f) = ring.file.as_mut() {
            let _ = writeln!(f, "{}", stamp(at, &line));
            if f.metadata()
                .map(|m| m.len() > self.max_file_bytes)
                .unwrap_or(false)
            {
                let _ = std::fs::rename(&self.path, self.path.with_extension("log.1"));
                ring.file = self.open().ok();
            }
        }
        ring.lines.push_back((n, at, line));
        if ring.lines.len() > RING_LINES {
            ring.lines.pop_front();
        }
        drop(ring);
        self.added.notify_all();
        n
    }

    /// The number of the newest line (0 before the first).
    pub fn last(&self) -> u64 {
        lock(&self.ring).next - 1
    }

    /// The texts of the last `k` lines numbered after `after`, unstamped:
    /// what an upstream said since it was started, for an error message.
    pub fn said_after(&self, after: u64, k: usize) -> Vec<String> {
        let ring = lock(&self.ring);
        let new: Vec<&(u64, u64, String)> =
            ring.lines.iter().filter(|(i, _, _)| *i > after).collect();
        new[new.len().saturating_sub(k)..]
            .iter()
            .map(|l| l.2.clone())
            .collect()
    }

    /// The last `n` lines, or with `after`, the lines numbered after it
    /// (waiting up to `wait` for some to arrive); each stamped.
    pub fn lines(&self, n: usize, after: Option<u64>, wait: Duration) -> Vec<(u64, String)> {
        let ring = lock(&self.ring);
        let stamped = |l: &(u64, u64, String)| (l.0, stamp(l.1, &l.2));
        let Some(after) = after else {
            let skip = ring.lines.len().saturating_sub(n);
            return ring.lines.iter().skip(skip).map(stamped).collect();
        };
        let (ring, _) = self
            .added
            .wait_timeout_while(ring, wait, |r| r.next <= after + 1)
            .unwrap_or_else(|p| p.into_inner());
        ring.lines
            .iter()
            .filter(|(i, _, _)| *i > after)
            .map(stamped)
            .collect()
    }
}

/// A log line as `logs` shows it and the file keeps it: UTC time, text.
fn stamp(at_ms: u64, text: &str) -> String {
    format!("{} {text}", crate::log::format_utc(at_ms))
}

/// The upstream id a file in the logs directory belongs to:
/// `<id>.log` or `<id>.log.1`.
fn log_owner(name: &str) -> Option<&str> {
    name.strip_suffix(".log")
        .or_else(|| name.strip_suffix(".log.1"))
        .filter(|id| !id.is_empty())
}

/// Remove the log files in `dir` not written for `retention` whose
/// upstream `running` does not name (a quiet upstream still has its file
/// open). The paths removed.
pub fn forget_old_logs(
    dir: &Path,
    retention: Duration,
    running: impl Fn(&str) -> bool,
) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let now = std::time::SystemTime::now();
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(id) = name.to_str().and_then(log_owner) else {
            continue;
        };
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age >= retention);
        if old && !running(id) && std::fs::remove_file(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed.sort();
    removed
}

/// The last `n` lines of an upstream's log file, for when the daemon no
/// longer knows the upstream.
pub fn file_tail(path: &Path, n: usize) -> Vec<String> {
    crate::state::home::tail(path, n)
        .lines()
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_logs_of_upstreams_not_running_are_forgotten() {
        let dir = std::env::temp_dir().join(format!("mcpshare-forget-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let old = std::time::SystemTime::now() - LOG_RETENTION - Duration::from_secs(60);
        for name in [
            "gone-1.log",
            "gone-1.log.1",
            "quiet-2.log",
            "new-3.log",
            "other.txt",
        ] {
            let f = File::create(dir.join(name)).unwrap();
            if name != "new-3.log" {
                f.set_modified(old).unwrap();
            }
        }
        let removed = forget_old_logs(&dir, LOG_RETENTION, |id| id == "quiet-2");
        assert_eq!(
            removed,
            vec![dir.join("gone-1.log"), dir.join("gone-1.log.1")]
        );
        for kept in ["quiet-2.log", "new-3.log", "other.txt"] {
            assert!(dir.join(kept).exists(), "{kept} was removed");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ring_keeps_the_last_lines_and_follows() {
        let dir = std::env::temp_dir().join(format!("mcpshare-logbook-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let book = Logbook::new(dir.join("x.log"), crate::log::DEFAULT_LOG_MAX_BYTES);
        let input: String = (0..1500).map(|i| format!("line {i}\n")).collect();
        book.capture(input.as_bytes());
        let last = book.lines(3, None, Duration::ZERO);
        assert!(last.iter().all(|l| l.1.as_bytes()[23] == b'Z'));
        assert_eq!(
            last.iter().map(|l| &l.1[25..]).collect::<Vec<_>>(),
            ["line 1497", "line 1498", "line 1499"]
        );
        assert_eq!(book.lines(5000, None, Duration::ZERO).len(), RING_LINES);
        assert!(
            book.lines(10, Some(1500), Duration::from_millis(10))
                .is_empty()
        );
        assert_eq!(book.push("new".into()), 1501);
        assert_eq!(book.last(), 1501);
        let new = book.lines(10, Some(1500), Duration::ZERO);
        assert_eq!((new.len(), new[0].0, &new[0].1[25..]), (1, 1501, "new"));
        assert_eq!(book.said_after(1498, 2), ["line 1499", "new"]);
        assert_eq!(
            std::fs::read_to_string(dir.join("x.log"))
                .unwrap()
                .lines()
                .count(),
            1501
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
