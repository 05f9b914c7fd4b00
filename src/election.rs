//! The election: make sure exactly one daemon serves this home, and find
//! it. Connect first; only when nobody holds the daemon lock take the start
//! lock, *probe again* (someone may have won meanwhile), then spawn. Every
//! wait is bounded. Nothing here signals a process.

use crate::error::{Error, Result};
use crate::net::client::{self, Health};
use crate::platform;
use crate::state::home::{self, Home};
use crate::state::lock;
use crate::state::manifest::{self, Manifest};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// The default bound on finding or starting a daemon.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// A daemon that holds the lock and does not answer for this long is hung.
pub const HUNG_AFTER: Duration = Duration::from_secs(3);
/// Spawns per `ensure_daemon` call before giving up.
const MAX_SPAWNS: u32 = 3;
const POLL_EVERY: Duration = Duration::from_millis(20);

#[derive(Debug)]
pub enum Probe {
    /// Nobody holds the daemon lock.
    NotRunning,
    /// The lock is held but no valid manifest of a live process says where.
    Starting,
    Alive(Manifest),
    /// The manifest's process lives but `/health` does not answer; why.
    Unresponsive(Manifest, String),
    Incompatible(Manifest, Health),
}

pub fn probe(home: &Home) -> Result<Probe> {
    let lock_path = home.daemon_lock();
    if !lock::is_held(&lock_path).map_err(|e| Error::Path(lock_path, e))? {
        return Ok(Probe::NotRunning);
    }
    let Some(m) = Manifest::read(&home.manifest()) else {
        return Ok(Probe::Starting);
    };
    if !platform::same_process(&m.process()) {
        // A stale manifest of a dead daemon; the lock holder has not written its own yet.
        return Ok(Probe::Starting);
    }
    match client::health(m.port, client::HEALTH_TIMEOUT) {
        Ok(h) if h.pid != m.pid => Ok(Probe::Starting),
        Ok(h) if h.protocol != manifest::PROTOCOL => Ok(Probe::Incompatible(m, h)),
        Ok(_) => Ok(Probe::Alive(m)),
        Err(why) => Ok(Probe::Unresponsive(m, why)),
    }
}

/// The live daemon, or None when nobody holds the lock. A daemon that is
/// starting is waited for until `deadline`; one that holds the lock and
/// does not answer for HUNG_AFTER is an error naming its pid.
pub fn find_daemon(home: &Home, deadline: Instant) -> Result<Option<Manifest>> {
    let began = Instant::now();
    let mut unresponsive_since: Option<Instant> = None;
    loop {
        let now = Instant::now();
        match probe(home)? {
            Probe::NotRunning => return Ok(None),
            Probe::Alive(m) => return Ok(Some(m)),
            Probe::Incompatible(m, h) => {
                return Err(Error::Incompatible {
                    pid: m.pid,
                    version: h.version,
                    protocol: h.protocol,
                    ours: manifest::PROTOCOL,
                });
            }
            Probe::Unresponsive(m, why) => {
                let since = *unresponsive_since.get_or_insert(now);
                if now.duration_since(since) >= HUNG_AFTER || now >= deadline {
                    let asked = began.elapsed().as_secs_f64().round() as u64;
                    let why = format!("{why}; asked for {asked} s");
                    return Err(Error::DaemonHung { pid: m.pid, why });
                }
            }
            Probe::Starting if now >= deadline => {
                return Err(unavailable(
                    home,
                    "a process holds the daemon lock but published no manifest".into(),
                ));
            }
            Probe::Starting => {}
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// Find the live daemon, starting one if none runs, before `deadline`.
pub fn ensure_daemon(home: &Home, deadline: Instant) -> Result<Manifest> {
    let mut spawns = 0;
    let mut asked_handoff = false;
    loop {
        if let Some(m) = find_daemon(home, deadline)? {
            let ours = crate::state::version::version();
            // Same protocol (find_daemon checked it) and strictly older: take over once.
            if asked_handoff || !crate::state::version::is_newer(&ours, &m.version) {
                return Ok(m);
            }
            asked_handoff = true;
            if !request_handoff(home, &m, &ours, deadline)? {
                return Ok(m);
            }
            continue;
        }
        let start_path = home.start_lock();
        let Some(_start) =
            lock::wait_exclusive(&start_path, deadline).map_err(|e| Error::Path(start_path, e))?
        else {
            return Err(unavailable(
                home,
                "timed out waiting for another client to start the daemon".into(),
            ));
        };
        // Someone may have won while we waited for the start lock.
        if !matches!(probe(home)?, Probe::NotRunning) {
            continue;
        }
        spawns += 1;
        if spawns > MAX_SPAWNS {
            return Err(unavailable(
                home,
                format!("{MAX_SPAWNS} daemons started and none stayed up"),
            ));
        }
        // Then probe again: either our daemon is ready, or it lost a race to another.
        spawn_daemon(home, deadline)?;
    }
}

/// How long a client waits for an older daemon to hand over.
pub const HANDOFF_WAIT: Duration = Duration::from_secs(20);

/// Ask an older daemon to drain and stop, and wait for its lock to free.
/// False when it declined (then attach to it).
fn request_handoff(home: &Home, m: &Manifest, ours: &str, deadline: Instant) -> Result<bool> {
    crate::log!(
        "daemon pid {} runs mcpshare {}; asking it to hand over to {ours}",
        m.pid,
        m.version
    );
    let body = serde_json::json!({"version": ours});
    let answer = crate::net::client::Client::new(m).call(
        "POST",
        "/api/handoff",
        Some(&body),
        Duration::from_secs(5),
    );
    match answer {
        Ok((202, _)) => {}
        Ok((code, body)) => {
            crate::log!(
                "daemon pid {} declined the handover (HTTP {code} {body}); attaching to it",
                m.pid
            );
            return Ok(false);
        }
        Err(e) => {
            crate::log!(
                "daemon pid {} did not take the handover request ({e}); attaching to it",
                m.pid
            );
            return Ok(false);
        }
    }
    let lock_path = home.daemon_lock();
    let until = deadline.max(Instant::now() + HANDOFF_WAIT);
    if !lock::wait_free(&lock_path, until).map_err(|e| Error::Path(lock_path, e))? {
        return Err(unavailable(
            home,
            format!(
                "daemon pid {} accepted the handover but did not stop",
                m.pid
            ),
        ));
    }
    Ok(true)
}

fn unavailable(home: &Home, reason: String) -> Error {
    Error::DaemonUnavailable {
        reason,
        log_tail: home::tail(&home.daemon_log(), 10),
    }
}

/// The variables a client passes on to the daemon it starts, besides
/// MCPSHARE_HOME (set to the home it resolved) and the daemon's documented
/// settings ([`crate::state::settings::SETTINGS`]); nothing else of the client's
/// environment, its secrets above all, reaches the daemon. Each upstream
/// gets the environment of its own client instead (see IDENTITY in
/// mcpshare(1)).
pub const DAEMON_ENVIRONMENT: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TZ",
    "TMPDIR",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "MCPSHARE_CONFIG",
    "RUST_BACKTRACE",
    "MCPSHARE_TEST_REPORTED_VERSION",
];

/// The environment of a daemon started for `home`.
fn daemon_environment(home: &Home) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let settings = crate::state::settings::SETTINGS.iter().map(|s| s.var);
    let mut env: Vec<_> = DAEMON_ENVIRONMENT
        .iter()
        .copied()
        .chain(settings)
        .filter_map(|k| Some((k.into(), std::env::var_os(k)?)))
        .collect();
    env.push(("MCPSHARE_HOME".into(), home.dir().into()));
    env
}

enum Boot {
    Ready,
    Exited(Option<std::process::ExitStatus>),
}

/// Start `mcpshare daemon` detached (own session, directory `/`, only
/// [`DAEMON_ENVIRONMENT`] and the settings of our environment, stdin from
/// /dev/null, stderr to daemon.log) and wait, bounded, for its readiness line.
fn spawn_daemon(home: &Home, deadline: Instant) -> Result<()> {
    // The daemon would refuse a bad setting in its log; refuse it here,
    // where the caller shows the user (the bridge logs it), and start nothing.
    crate::state::settings::Settings::from_env()?;
    let exe =
        std::env::current_exe().map_err(|e| Error::io("cannot find the mcpshare executable", e))?;
    let log_path = home.daemon_log();
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let log = o
        .open(&log_path)
        .map_err(|e| Error::Path(log_path.clone(), e))?;
    let mut cmd = Command::new(&exe);
    cmd.arg("daemon")
        .env_clear()
        .envs(daemon_environment(home))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    platform::detach(&mut cmd);
    crate::log!("starting the mcpshare daemon for {}", home.dir().display());
    let mut child = cmd.spawn().map_err(|e| Error::Path(exe.clone(), e))?;
    let pid = child.id();
    let stdout = child.stdout.take();
    let (tx, rx) = channel::<Boot>();
    // The daemon is our child until we exit: reap it whenever it ends, so it
    // never lingers as a zombie that still looks alive.
    std::thread::Builder::new()
        .name("daemon-reaper".into())
        .spawn(move || {
            let mut line = String::new();
            if let Some(out) = stdout {
                let _ = BufReader::new(out).read_line(&mut line);
            }
            if line.contains("ready") {
                let _ = tx.send(Boot::Ready);
            }
            let _ = tx.send(Boot::Exited(child.wait().ok()));
        })
        .map_err(|e| Error::io("cannot start a thread", e))?;
    let left = deadline.saturating_duration_since(Instant::now());
    match rx.recv_timeout(left) {
        Ok(Boot::Ready) => Ok(()),
        // It lost the lock to another daemon: the caller probes and attaches.
        Ok(Boot::Exited(status))
            if status.and_then(|s| s.code()) == Some(Error::AlreadyRunning.exit_code()) =>
        {
            Ok(())
        }
        Ok(Boot::Exited(status)) => Err(unavailable(
            home,
            format!(
                "the daemon exited during start-up ({})",
                status.map(|s| s.to_string()).unwrap_or_default()
            ),
        )),
        Err(RecvTimeoutError::Timeout) => {
            // Our own child, not yet reaped (the reaper thread waits on it),
            // and a session leader, so its group is exactly what we started.
            let _ = platform::signal_group(pid, platform::Signal::Kill);
            Err(unavailable(
                home,
                format!("the daemon (pid {pid}) did not become ready in time and was killed"),
            ))
        }
        Err(RecvTimeoutError::Disconnected) => {
            Err(unavailable(home, "lost track of the daemon".into()))
        }
    }
}
