//! An upstream's standard error: every line goes to its log file (rotated
//! to `<id>.log.1` past a size cap) and to a ring buffer of the last lines,
//! numbered so `mcpshare logs -f` can ask for what came after. Stderr is
//! never treated as an error signal.

use crate::pool::lock;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Lines kept in memory per upstream.
pub const RING_LINES: usize = 1000;
/// A log file is rotated once it grows past this.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Longest line kept; the rest of a longer one is cut.
const MAX_LINE: usize = 8 * 1024;

pub struct Logbook {
    path: PathBuf,
    ring: Mutex<Ring>,
    added: Condvar,
}

struct Ring {
    lines: VecDeque<(u64, String)>,
    next: u64,
}

impl Logbook {
    pub fn new(path: PathBuf) -> Logbook {
        Logbook {
            path,
            ring: Mutex::new(Ring {
                lines: VecDeque::new(),
                next: 1,
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
        let mut file = self.open().ok();
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
            if let Some(f) = file.as_mut() {
                let _ = f.write_all(&buf);
                if f.metadata()
                    .map(|m| m.len() > MAX_FILE_BYTES)
                    .unwrap_or(false)
                {
                    let _ = std::fs::rename(&self.path, self.path.with_extension("log.1"));
                    file = self.open().ok();
                }
            }
            self.push(line);
        }
    }

    pub fn push(&self, line: String) {
        let mut ring = lock(&self.ring);
        let n = ring.next;
        ring.next += 1;
        ring.lines.push_back((n, line));
        if ring.lines.len() > RING_LINES {
            ring.lines.pop_front();
        }
        drop(ring);
        self.added.notify_all();
    }

    /// The last `n` lines, or with `after`, the lines numbered after it
    /// (waiting up to `wait` for some to arrive).
    pub fn lines(&self, n: usize, after: Option<u64>, wait: Duration) -> Vec<(u64, String)> {
        let ring = lock(&self.ring);
        let Some(after) = after else {
            let skip = ring.lines.len().saturating_sub(n);
            return ring.lines.iter().skip(skip).cloned().collect();
        };
        let (ring, _) = self
            .added
            .wait_timeout_while(ring, wait, |r| r.next <= after + 1)
            .unwrap_or_else(|p| p.into_inner());
        ring.lines
            .iter()
            .filter(|(i, _)| *i > after)
            .cloned()
            .collect()
    }
}

/// The last `n` lines of an upstream's log file, for when the daemon no
/// longer knows the upstream.
pub fn file_tail(path: &Path, n: usize) -> Vec<String> {
    crate::home::tail(path, n)
        .lines()
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_last_lines_and_follows() {
        let dir = std::env::temp_dir().join(format!("mcpshare-logbook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let book = Logbook::new(dir.join("x.log"));
        let input: String = (0..1500).map(|i| format!("line {i}\n")).collect();
        book.capture(input.as_bytes());
        let last = book.lines(3, None, Duration::ZERO);
        assert_eq!(
            last.iter().map(|l| l.1.as_str()).collect::<Vec<_>>(),
            ["line 1497", "line 1498", "line 1499"]
        );
        assert_eq!(book.lines(5000, None, Duration::ZERO).len(), RING_LINES);
        assert!(
            book.lines(10, Some(1500), Duration::from_millis(10))
                .is_empty()
        );
        book.push("new".into());
        assert_eq!(
            book.lines(10, Some(1500), Duration::ZERO),
            vec![(1501, "new".to_string())]
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("x.log"))
                .unwrap()
                .lines()
                .count(),
            1500
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
