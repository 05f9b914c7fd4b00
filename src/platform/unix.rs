//! The unix side of the platform: signals, process groups and sessions,
//! descriptors, and waiting on children without reaping them. Every call
//! here is a plain libc call; none decides whom to signal.

use super::Signal;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

fn signo(s: Signal) -> libc::c_int {
    match s {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    }
}

/// `kill(pid, 0)`: alive, where EPERM (someone else's process) counts as alive.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if p <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks permission and existence.
    let r = unsafe { libc::kill(p, 0) };
    let exists = r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    // A zombie has exited; only its parent has not reaped it yet.
    exists && !super::is_zombie(pid)
}

pub fn signal(pid: u32, s: Signal) -> io::Result<()> {
    let p = libc::pid_t::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    if p <= 0 {
        return Err(io::Error::other("refusing to signal pid <= 0"));
    }
    // SAFETY: plain syscall on a positive pid; no memory is shared.
    if unsafe { libc::kill(p, signo(s)) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub fn signal_group(pgid: u32, s: Signal) -> io::Result<()> {
    let p = libc::pid_t::try_from(pgid).map_err(|_| io::Error::other("pgid out of range"))?;
    if p <= 1 {
        return Err(io::Error::other("refusing to signal process group <= 1"));
    }
    // SAFETY: a negative pid names a process group; p > 1 so never "all processes".
    if unsafe { libc::kill(-p, signo(s)) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Make the spawned process the leader of a new session, detached from
/// the caller's terminal and process group, with default signal
/// handling ([`default_signals`]): a daemon started by a bridge under
/// `nohup` would otherwise ignore the SIGHUP it means to wait for.
pub fn detach(cmd: &mut Command) {
    default_signals(cmd);
    // SAFETY: setsid is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The signals the daemon and the bridge take with `sigwait`.
const TERMINATION: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// Start the spawned program with no signal blocked and the termination
/// signals at their default action. A process inherits its parent's
/// mask and ignored signals through fork and exec, and ours blocks
/// SIGTERM, SIGINT and SIGHUP for `sigwait`: a server that never
/// unblocks them (bash, Python, Node) would never see our SIGTERM.
pub fn default_signals(cmd: &mut Command) {
    // SAFETY: sigemptyset, pthread_sigmask and signal are
    // async-signal-safe, and the sigset is a local of the child.
    unsafe {
        cmd.pre_exec(|| {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            let r = libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            if r != 0 {
                return Err(io::Error::from_raw_os_error(r));
            }
            for s in TERMINATION {
                if libc::signal(s, libc::SIG_DFL) == libc::SIG_ERR {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Put the spawned process in its own process group with default
/// signal handling ([`default_signals`]) and, on Linux, have the kernel
/// SIGKILL it when the spawning thread's process dies.
pub fn die_with_parent(cmd: &mut Command) {
    cmd.process_group(0);
    default_signals(cmd);
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id();
        // SAFETY: prctl and getppid are async-signal-safe; `parent` is a
        // plain integer copied into the closure.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() as u32 != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
}

/// Point fd 1 at whatever fd 2 is (the daemon's log once it is ready).
pub fn stdout_to_stderr() -> io::Result<()> {
    // SAFETY: dup2 on two valid standard descriptors.
    if unsafe { libc::dup2(2, 1) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Is standard error the file at `path` (same device and inode)?
pub fn stderr_is(path: &std::path::Path) -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    match (std::fs::File::from(fd).metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Point standard error and standard output at `file` (a fresh log
/// after rotating the old one). Each line is one write, so none is cut.
pub fn redirect_stdout_stderr(file: &std::fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    for target in [2, 1] {
        // SAFETY: dup2 of a descriptor we own onto a standard one; the
        // old one is closed atomically and nothing holds its number.
        if unsafe { libc::dup2(file.as_raw_fd(), target) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Block SIGTERM, SIGINT and SIGHUP in this thread (threads spawned
/// afterwards inherit the mask), and run `f` with the signal number on a
/// named thread each time one arrives, for the life of the process: a
/// second signal while the first is being handled is handled too, never
/// left pending. Call before spawning other threads.
pub fn on_termination(mut f: impl FnMut(i32) + Send + 'static) -> io::Result<()> {
    // SAFETY: sigset_t is plain data; it is initialised by sigemptyset
    // before use, and pthread_sigmask only reads it.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in TERMINATION {
            libc::sigaddset(&mut set, s);
        }
        let r = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        set
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            loop {
                let mut sig: libc::c_int = 0;
                // SAFETY: `set` is an initialised sigset owned by this closure.
                let r = unsafe { libc::sigwait(&set, &mut sig) };
                if r != 0 {
                    // Only an invalid set fails, and it would fail
                    // forever. Plain stderr: the log module sits above this one.
                    eprintln!(
                        "mcpshare: cannot wait for signals: {}",
                        io::Error::from_raw_os_error(r)
                    );
                    return;
                }
                f(sig)
            }
        })?;
    Ok(())
}

/// Wait up to `timeout` until `s` or standard input is readable (or
/// closed): true when `s` is.
pub fn readable_before_stdin(s: &std::net::TcpStream, timeout: std::time::Duration) -> bool {
    use std::os::fd::AsRawFd;
    let events = libc::POLLIN | libc::POLLHUP | libc::POLLERR;
    let mut fds = [
        libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    loop {
        // SAFETY: poll on two pollfds we own, for at most `ms`.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return n > 0 && fds[0].revents & events != 0;
    }
}

/// A second handle on a child's stdout pipe, to ask whether anything in it
/// is still unread while another thread owns the reading end.
pub struct PipeWatch(std::os::fd::OwnedFd);

impl PipeWatch {
    pub fn of(pipe: &std::process::ChildStdout) -> Option<PipeWatch> {
        use std::os::fd::AsFd;
        pipe.as_fd().try_clone_to_owned().ok().map(PipeWatch)
    }

    /// Nothing to read, and no end of file to read either: whoever still
    /// holds the writing end has written nothing more. One syscall.
    pub fn drained(&self) -> bool {
        use std::os::fd::AsRawFd;
        let mut fd = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one pollfd we own, without waiting.
        let n = unsafe { libc::poll(&mut fd, 1, 0) };
        n == 0
    }
}

/// Does a peek find the socket open with nothing to read? One syscall.
pub fn nothing_to_read(s: &std::net::TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut b = [0u8; 1];
    // SAFETY: recv into a one-byte buffer we own, on a socket we own.
    let n = unsafe {
        libc::recv(
            s.as_raw_fd(),
            b.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}

/// Let up to `n` connections queue for accept (std listens with 128;
/// Linux caps `n` at net.core.somaxconn). Calling listen again on a
/// listening socket only changes its backlog.
pub fn widen_backlog(listener: &std::net::TcpListener, n: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: listen on a socket we own.
    if unsafe { libc::listen(listener.as_raw_fd(), n) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// How many descriptors the process has open now, inherited ones
/// included; None if the OS does not list them.
pub fn open_descriptors() -> Option<u64> {
    // Linux and macOS both list them in /dev/fd; the listing's own
    // descriptor is one of them.
    let n = std::fs::read_dir("/dev/fd").ok()?.count() as u64;
    Some(n.saturating_sub(1))
}

/// Close every descriptor above stderr: what whoever started us left
/// open (a client app's pipes and files), which a long-lived process
/// must neither hold nor pass on to its children. Call it before opening
/// anything, while the process has one thread.
pub fn close_inherited() {
    let Ok(dir) = std::fs::read_dir("/dev/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    // The listing's own descriptor is among them, closed already by now:
    // closing it again fails harmlessly, as nothing has opened another.
    for fd in fds {
        // SAFETY: no Rust object owns these descriptors (none was opened
        // by this process yet), so closing them invalidates nothing.
        unsafe {
            libc::close(fd);
        }
    }
}

/// Raise the soft limit on open descriptors to the hard limit (as far
/// as the OS allows) and return the limit now in force.
pub fn raise_fd_limit() -> Option<u64> {
    // SAFETY: getrlimit/setrlimit read and write a struct we own.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        // macOS refuses more than OPEN_MAX even when the hard limit is unlimited.
        let ceilings = [lim.rlim_max, lim.rlim_max.min(10240)];
        for want in ceilings {
            if want <= lim.rlim_cur {
                break;
            }
            let raised = libc::rlimit {
                rlim_cur: want,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = want;
                break;
            }
        }
        Some(lim.rlim_cur)
    }
}

pub fn uid() -> Option<u32> {
    // SAFETY: getuid cannot fail.
    Some(unsafe { libc::getuid() })
}

/// Is this path on a network filesystem, where locks may not hold?
pub fn on_network_fs(path: &std::path::Path) -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        // SAFETY: statfs writes into a zeroed struct we own; `c` is a valid C string.
        let kind = unsafe {
            let mut st: libc::statfs = std::mem::zeroed();
            if libc::statfs(c.as_ptr(), &mut st) != 0 {
                return None;
            }
            st.f_type as i64
        };
        const NFS: i64 = 0x6969;
        const SMB: i64 = 0x517b;
        const CIFS: i64 = 0xff53_4d42;
        const SMB2: i64 = 0xfe53_4d42;
        const FUSE: i64 = 0x6573_5546;
        Some(matches!(kind, NFS | SMB | CIFS | SMB2 | FUSE))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}

/// Has our child `pid` exited? Waits for it when `block`. The child is
/// left unreaped (`WNOWAIT`): while it is a zombie its pid, and so its
/// process group id, cannot be reused, and signals to that group stay
/// safe until whoever owns it reaps it.
pub fn child_exited(pid: u32, block: bool) -> io::Result<bool> {
    let p = libc::id_t::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    let mut flags = libc::WEXITED | libc::WNOWAIT;
    if !block {
        flags |= libc::WNOHANG;
    }
    loop {
        // SAFETY: siginfo_t is plain old data, zeroed before use; waitid
        // only writes into it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid on one pid with a valid siginfo_t pointer.
        let r = unsafe { libc::waitid(libc::P_PID, p, &mut info, flags) };
        if r == 0 {
            // SAFETY: si_pid is valid to read for SIGCHLD-style siginfo,
            // which waitid fills (and leaves zero when nothing changed).
            return Ok(unsafe { info.si_pid() } != 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Nothing to do: an upstream leads its own process group, and
/// [`die_with_parent`] plus the daemon's group signals already end it and
/// its children with the daemon.
pub fn contain_child(_child: &std::process::Child) -> io::Result<()> {
    Ok(())
}

/// Fill `buf` with random bytes from the OS.
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}
