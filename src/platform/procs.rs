//! What the OS tells of any process of this user: owner, command line,
//! resident memory, age and the pipes it holds open. Read only: nothing
//! here signals. Linux reads /proc; elsewhere each call returns an
//! "unsupported" error (see mcpshare(1), `orphans`).

use std::io;
use std::time::Duration;

/// One end of a pipe a process holds open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipeEnd {
    /// The pipe's inode, as in `pipe:[INODE]`.
    pub inode: u64,
    /// Open for writing (write only or read-write).
    pub writable: bool,
}

/// Parse `pipe:[INODE]`, the link text of a descriptor that is a pipe.
pub fn parse_pipe_link(link: &str) -> Option<u64> {
    link.strip_prefix("pipe:[")?.strip_suffix(']')?.parse().ok()
}

/// Parse the `flags:` line (octal) of `/proc/PID/fdinfo/FD`: is the
/// descriptor open for writing?
pub fn parse_fdinfo_writable(fdinfo: &str) -> Option<bool> {
    let flags = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))?
        .trim();
    let flags = u32::from_str_radix(flags, 8).ok()?;
    // O_ACCMODE is 3: 0 read only, 1 write only, 2 read-write.
    Some(matches!(flags & 3, 1 | 2))
}

/// The real uid on the `Uid:` line of `/proc/PID/status`.
pub fn parse_status_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The `VmRSS:` line of `/proc/PID/status`, in bytes (0 for a kernel
/// thread or a zombie, which have none).
pub fn parse_status_rss(status: &str) -> Option<u64> {
    let Some(line) = status.lines().find_map(|l| l.strip_prefix("VmRSS:")) else {
        return status.contains("Uid:").then_some(0);
    };
    let mut words = line.split_ascii_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => Some(n * 1024),
        Some(_) => None,
    }
}

/// Split `/proc/PID/cmdline` (NUL-separated, usually NUL-terminated).
/// `/proc/PID/environ`: NUL-separated `KEY=VALUE`; entries that are not
/// UTF-8 or have no `=` are left out.
pub fn parse_environ(bytes: &[u8]) -> std::collections::BTreeMap<String, String> {
    bytes
        .split(|b| *b == 0)
        .filter_map(|e| std::str::from_utf8(e).ok())
        .filter_map(|e| e.split_once('='))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn parse_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|b| *b == 0)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;

    fn read(pid: u32, what: &str) -> io::Result<String> {
        std::fs::read_to_string(format!("/proc/{pid}/{what}"))
    }

    fn bad(pid: u32, what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cannot parse /proc/{pid}/{what}"),
        )
    }

    pub fn process_listing() -> io::Result<()> {
        std::fs::metadata("/proc/self/stat").map(|_| ())
    }

    pub fn process_uid(pid: u32) -> io::Result<u32> {
        parse_status_uid(&read(pid, "status")?).ok_or_else(|| bad(pid, "status"))
    }

    pub fn cmdline(pid: u32) -> io::Result<Vec<String>> {
        Ok(parse_cmdline(&std::fs::read(format!(
            "/proc/{pid}/cmdline"
        ))?))
    }

    pub fn resident_bytes(pid: u32) -> io::Result<u64> {
        parse_status_rss(&read(pid, "status")?).ok_or_else(|| bad(pid, "status"))
    }

    pub fn cwd_of(pid: u32) -> io::Result<String> {
        Ok(std::fs::read_link(format!("/proc/{pid}/cwd"))?
            .display()
            .to_string())
    }

    pub fn environ_of(pid: u32) -> io::Result<std::collections::BTreeMap<String, String>> {
        Ok(parse_environ(&std::fs::read(format!(
            "/proc/{pid}/environ"
        ))?))
    }

    pub fn stdin_pipe(pid: u32) -> io::Result<Option<u64>> {
        let link = std::fs::read_link(format!("/proc/{pid}/fd/0"))?;
        Ok(link.to_str().and_then(parse_pipe_link))
    }

    pub fn pipe_ends(pid: u32) -> io::Result<Vec<PipeEnd>> {
        let mut ends = Vec::new();
        for e in std::fs::read_dir(format!("/proc/{pid}/fd"))?.flatten() {
            let Ok(link) = std::fs::read_link(e.path()) else {
                continue;
            };
            let Some(inode) = link.to_str().and_then(parse_pipe_link) else {
                continue;
            };
            let fd = e.file_name();
            let Some(fd) = fd.to_str() else { continue };
            // A descriptor closed between the two reads is simply skipped.
            let Ok(info) = read(pid, &format!("fdinfo/{fd}")) else {
                continue;
            };
            if let Some(writable) = parse_fdinfo_writable(&info) {
                ends.push(PipeEnd { inode, writable });
            }
        }
        Ok(ends)
    }

    pub fn clock_ticks_per_second() -> u64 {
        // SAFETY: sysconf only reads a system constant.
        let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        u64::try_from(n).ok().filter(|n| *n > 0).unwrap_or(100)
    }

    pub fn process_age(pid: u32) -> io::Result<Duration> {
        let start = super::super::start_time(pid)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no pid {pid}")))?;
        let uptime = std::fs::read_to_string("/proc/uptime")?;
        let up: f64 = uptime
            .split_ascii_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "cannot parse /proc/uptime")
            })?;
        let started = start as f64 / clock_ticks_per_second() as f64;
        Ok(Duration::from_secs_f64((up - started).max(0.0)))
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    fn unsupported() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "listing processes is not supported on this platform yet",
        )
    }
    pub fn process_listing() -> io::Result<()> {
        Err(unsupported())
    }
    pub fn process_uid(_pid: u32) -> io::Result<u32> {
        Err(unsupported())
    }
    pub fn cmdline(_pid: u32) -> io::Result<Vec<String>> {
        Err(unsupported())
    }
    pub fn resident_bytes(_pid: u32) -> io::Result<u64> {
        Err(unsupported())
    }
    pub fn stdin_pipe(_pid: u32) -> io::Result<Option<u64>> {
        Err(unsupported())
    }
    pub fn cwd_of(_pid: u32) -> io::Result<String> {
        Err(unsupported())
    }
    pub fn environ_of(_pid: u32) -> io::Result<std::collections::BTreeMap<String, String>> {
        Err(unsupported())
    }
    pub fn pipe_ends(_pid: u32) -> io::Result<Vec<PipeEnd>> {
        Err(unsupported())
    }
    pub fn clock_ticks_per_second() -> u64 {
        100
    }
    pub fn process_age(_pid: u32) -> io::Result<Duration> {
        Err(unsupported())
    }
}

/// Clock ticks per second, the unit of start times.
pub use imp::clock_ticks_per_second;
/// The command line of `pid`, one string per argument (empty for a kernel
/// thread or a zombie).
pub use imp::cmdline;
/// The working directory of `pid` (a process of this user).
pub use imp::cwd_of;
/// The environment `pid` started with (a process of this user).
pub use imp::environ_of;
/// Every pipe end `pid` holds open (only this user's processes can be read).
pub use imp::pipe_ends;
/// How long ago `pid` started.
pub use imp::process_age;
/// Ok where processes can be listed and read (Linux), else "unsupported".
pub use imp::process_listing;
/// The real uid of `pid`.
pub use imp::process_uid;
/// Resident memory of `pid` in bytes.
pub use imp::resident_bytes;
/// The inode of the pipe on `pid`'s standard input, None when stdin is no pipe.
pub use imp::stdin_pipe;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_texts_parse() {
        assert_eq!(parse_pipe_link("pipe:[12345]"), Some(12345));
        assert_eq!(parse_pipe_link("socket:[12345]"), None);
        assert_eq!(parse_pipe_link("/dev/null"), None);
        assert_eq!(
            parse_fdinfo_writable("pos:\t0\nflags:\t02000001\nmnt_id:\t15\n"),
            Some(true)
        );
        assert_eq!(
            parse_fdinfo_writable("pos:\t0\nflags:\t02000000\n"),
            Some(false)
        );
        assert_eq!(parse_fdinfo_writable("flags:\t0102\n"), Some(true));
        assert_eq!(parse_fdinfo_writable("pos: 0\n"), None);
        let status = "Name:\tnode\nUid:\t1000\t1000\t1000\t1000\nVmRSS:\t  51200 kB\n";
        assert_eq!(parse_status_uid(status), Some(1000));
        assert_eq!(parse_status_rss(status), Some(51200 * 1024));
        assert_eq!(
            parse_status_rss("Name:\tkthreadd\nUid:\t0\t0\t0\t0\n"),
            Some(0)
        );
        assert_eq!(parse_status_rss("garbage"), None);
        assert_eq!(
            parse_cmdline(b"npx\0-y\0@scope/server-x\0"),
            ["npx", "-y", "@scope/server-x"]
        );
        assert_eq!(parse_cmdline(b"a b\0c"), ["a b", "c"]);
        assert!(parse_cmdline(b"").is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_read() {
        let me = std::process::id();
        assert!(process_listing().is_ok());
        assert_eq!(Some(process_uid(me).unwrap()), super::super::uid());
        assert!(!cmdline(me).unwrap().is_empty());
        assert!(resident_bytes(me).unwrap() > 0);
        assert!(process_age(me).unwrap() < Duration::from_secs(24 * 3600));
        use std::os::unix::fs::MetadataExt;
        let (r, w) = std::io::pipe().unwrap();
        let r = std::fs::File::from(std::os::fd::OwnedFd::from(r));
        let inode = r.metadata().unwrap().ino();
        let ends = pipe_ends(me).unwrap();
        assert!(
            ends.contains(&PipeEnd {
                inode,
                writable: true
            }),
            "{ends:?}"
        );
        assert!(
            ends.contains(&PipeEnd {
                inode,
                writable: false
            }),
            "{ends:?}"
        );
        drop(w);
    }
}
