//! `mcpshare restart`: asks the daemon to restart one upstream. It never
//! signals the upstream itself; the daemon owns its children.

use super::stop::STOP_TIMEOUT;
use super::{control, live_daemon};
use crate::error::{Error, Result};
use crate::state::home::Home;

pub(super) fn restart(home: &Home, id: &str) -> Result<i32> {
    let m = live_daemon(home)?
        .ok_or_else(|| Error::Daemon(format!("no daemon running for {}", home.dir().display())))?;
    let timeout = crate::state::settings::start_timeout() + STOP_TIMEOUT;
    let (code, body) = control(&m, "POST", &format!("/api/restart/{id}"), timeout)?;
    match code {
        200 => {
            println!("restarted {id} (pid {})", body["pid"]);
            Ok(0)
        }
        _ => Err(Error::Daemon(format!(
            "cannot restart {id}: {}",
            body["error"].as_str().unwrap_or("unknown error")
        ))),
    }
}
