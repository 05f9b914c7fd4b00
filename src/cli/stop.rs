//! `mcpshare stop`: asks the daemon to stop and waits for its lock to be
//! free. It never signals a process.

use super::{CONTROL_TIMEOUT, control, live_daemon};
use crate::error::{Error, Result};
use crate::state::home::Home;
use crate::state::lock;
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
