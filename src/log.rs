//! The daemon's and bridge's log lines: one line each, UTC timestamp, pid,
//! to stderr (the daemon's stderr is its log file once detached), and the
//! rotation of that file by size. Never to stdout, which belongs to the
//! protocol in the bridge.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A log file is rotated once it passes this many bytes, unless
/// MCPSHARE_LOG_MAX_BYTES says otherwise.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 1024 * 1024;
/// The smallest MCPSHARE_LOG_MAX_BYTES honoured, so a typo cannot make
/// every line rotate the file.
pub const MIN_LOG_MAX_BYTES: u64 = 1024;
/// Rotated daemon logs kept: `daemon.log.1` (the newest) to `daemon.log.3`.
pub const DAEMON_LOGS_KEPT: usize = 3;

/// `path` with `.n` appended: `daemon.log.2`.
fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Move `path` to `path.1`, `path.1` to `path.2` and so on, keeping `keep`
/// rotated files: the oldest one falls off.
pub fn shift_rotated(path: &Path, keep: usize) -> std::io::Result<()> {
    if keep == 0 {
        return std::fs::remove_file(path);
    }
    for n in (1..keep).rev() {
        match std::fs::rename(numbered(path, n), numbered(path, n + 1)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(path, numbered(path, 1))
}

/// Rotate `path` once it passes `max_bytes`, when it is the file this
/// process logs to (a daemon in the foreground logs where its service
/// manager says, and that is not ours to move): shift the old files, then
/// point standard error and output at a fresh `path`. True if it rotated.
pub fn rotate_own_log(path: &Path, max_bytes: u64, keep: usize) -> std::io::Result<bool> {
    let big = std::fs::metadata(path).is_ok_and(|m| m.len() > max_bytes);
    if !big || !crate::platform::stderr_is(path) {
        return Ok(false);
    }
    shift_rotated(path, keep)?;
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    crate::platform::redirect_stdout_stderr(&o.open(path)?)?;
    Ok(true)
}

pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `2026-11-23T03:50:01.123Z` for a unix-millisecond time.
pub fn format_utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm), valid for all u64 days here.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

pub fn line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let text = format!(
        "{} mcpshare[{}]: {args}\n",
        format_utc(unix_millis()),
        std::process::id()
    );
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => { $crate::log::line(format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn rotation_keeps_the_newest_files() {
        let dir = std::env::temp_dir().join(format!("mcpshare-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("daemon.log");
        for generation in 0..5 {
            std::fs::write(&log, format!("generation {generation}")).unwrap();
            super::shift_rotated(&log, 3).unwrap();
        }
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
        assert_eq!(read("daemon.log"), None, "the live file was moved");
        assert_eq!(read("daemon.log.1").as_deref(), Some("generation 4"));
        assert_eq!(read("daemon.log.2").as_deref(), Some("generation 3"));
        assert_eq!(read("daemon.log.3").as_deref(), Some("generation 2"));
        assert_eq!(read("daemon.log.4"), None, "more than 3 rotated files kept");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn formats_utc() {
        assert_eq!(super::format_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::format_utc(1_795_405_801_123),
            "2026-11-23T03:50:01.123Z"
        );
        assert_eq!(
            super::format_utc(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
