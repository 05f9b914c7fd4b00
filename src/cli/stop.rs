//! `mcpshare stop`: asks the daemon to stop and waits for its lock to be
//! free; `--force` signals a hung daemon's pid, only after confirming its
//! start time and executable. It never signals a pid it has not confirmed.

use super::{CONTROL_TIMEOUT, control, live_daemon};
use crate::error::{Error, Result};
use crate::platform;
use crate::state::home::Home;
use crate::state::lock;
use crate::state::manifest::Manifest;
use std::time::{Duration, Instant};

/// How long `stop` waits for the daemon's lock to be free.
pub(super) const STOP_TIMEOUT: Duration = Duration::from_secs(20);

pub(super) fn stop(home: &Home) -> Result<i32> {
    let deadline = Instant::now() + STOP_TIMEOUT;
    let m = match live_daemon(home) {
        Ok(Some(m)) => m,
        Ok(None) => {
            println!("no daemon running for {}", home.dir().display());
            return Ok(0);
        }
        // A daemon of another protocol still takes a stop request.
        Err(Error::Incompatible { pid, .. }) => {
            crate::state::manifest::Manifest::read(&home.manifest())
                .filter(|m| m.pid == pid)
                .ok_or_else(|| {
                    Error::Daemon(format!("daemon pid {pid}: its manifest changed; try again"))
                })?
        }
        Err(e) => return Err(e),
    };
    let (code, _) = control(&m, "POST", "/api/stop", CONTROL_TIMEOUT)?;
    if code != 202 {
        return Err(Error::Daemon(format!(
            "daemon pid {} refused to stop: HTTP {code}",
            m.pid
        )));
    }
    let lock_path = home.daemon_lock();
    if !lock::wait_free(&lock_path, deadline).map_err(|e| Error::Path(lock_path, e))? {
        return Err(Error::Daemon(format!(
            "daemon pid {} did not stop within {} s",
            m.pid,
            STOP_TIMEOUT.as_secs()
        )));
    }
    println!("stopped daemon pid {}", m.pid);
    Ok(0)
}

/// `mcpshare stop --force`: signal the daemon's recorded pid, but only
/// after confirming it is the process that published the manifest (start
/// time and executable), then wait for its lock to be free.
pub(super) fn stop_force(home: &Home) -> Result<i32> {
    use std::time::{Duration, Instant};
    if !crate::state::lock::is_held(&home.daemon_lock())
        .map_err(|e| Error::Path(home.daemon_lock(), e))?
    {
        println!("no daemon running for {}", home.dir().display());
        return Ok(0);
    }
    let m = Manifest::read(&home.manifest()).ok_or_else(|| {
        Error::Daemon(
            "the daemon lock is held but no valid manifest names its holder; nothing is signalled"
                .into(),
        )
    })?;
    if !platform::same_process(&m.process()) {
        return Err(Error::Daemon(format!(
            "pid {} in the manifest is gone or was reused (start time differs); nothing is signalled",
            m.pid
        )));
    }
    let exe = platform::exe(m.pid).map(|p| p.display().to_string());
    if exe.as_deref() != Some(m.exe.as_str()) {
        return Err(Error::Daemon(format!(
            "pid {} runs {} but the manifest names {}; nothing is signalled",
            m.pid,
            exe.unwrap_or_else(|| "an unknown executable".into()),
            m.exe
        )));
    }
    let lock_path = home.daemon_lock();
    platform::signal(m.pid, platform::Signal::Term)
        .map_err(|e| Error::io(format!("cannot signal pid {}", m.pid), e))?;
    let freed = crate::state::lock::wait_free(&lock_path, Instant::now() + FORCE_GRACE)
        .map_err(|e| Error::Path(lock_path.clone(), e))?;
    if !freed {
        // Same process still (checked again): a stopped or wedged daemon ignores SIGTERM.
        if platform::same_process(&m.process()) {
            let _ = platform::signal(m.pid, platform::Signal::Kill);
        }
        if !crate::state::lock::wait_free(&lock_path, Instant::now() + Duration::from_secs(10))
            .map_err(|e| Error::Path(lock_path.clone(), e))?
        {
            return Err(Error::Daemon(format!(
                "daemon pid {} still holds its lock after SIGKILL",
                m.pid
            )));
        }
    }
    // A killed daemon leaves its manifest; remove it only if it is still that one.
    if Manifest::read(&home.manifest()).is_some_and(|now| now.pid == m.pid && now.token == m.token)
    {
        let _ = std::fs::remove_file(home.manifest());
    }
    println!(
        "stopped daemon pid {}{}",
        m.pid,
        if freed {
            ""
        } else {
            " (SIGKILL after SIGTERM was ignored)"
        }
    );
    Ok(0)
}

/// How long `stop --force` waits after SIGTERM before SIGKILL.
pub const FORCE_GRACE: std::time::Duration = std::time::Duration::from_secs(3);
