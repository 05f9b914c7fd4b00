//! `mcpshare restart`: asks the daemon to restart one upstream, or every
//! upstream of a configured server. It never signals the upstream itself;
//! the daemon owns its children. It never starts a server that is not
//! running: a configured server starts on its next use.

use super::control;
use super::stop::STOP_TIMEOUT;
use super::target::{Target, configured, daemon_status, target};
use crate::error::{Error, Result};
use crate::state::home::Home;
use crate::state::manifest::Manifest;

pub(super) fn restart(home: &Home, arg: &str) -> Result<i32> {
    let Some((m, st)) = daemon_status(home)? else {
        if configured(arg) {
            println!("{arg} is not running (no daemon runs); it starts on its next use");
            return Ok(0);
        }
        return Err(Error::Daemon(format!(
            "no daemon running for {}",
            home.dir().display()
        )));
    };
    let (upstreams, state) = match target(&st, arg) {
        Target::Upstream => return restart_one(&m, arg, arg),
        Target::Server { upstreams, state } => (upstreams, state),
    };
    if upstreams.is_empty() {
        return match state.as_str() {
            "disabled" => Err(Error::Daemon(format!(
                "server {arg} is disabled; 'mcpshare enable {arg}' to run it again"
            ))),
            _ => {
                println!("{arg} is not running ({state}); it starts on its next use");
                Ok(0)
            }
        };
    }
    // Every upstream is tried; the first failure is the answer.
    let mut first_error = None;
    for id in &upstreams {
        match restart_one(&m, arg, id) {
            Err(e) if first_error.is_some() => eprintln!("mcpshare: {e}"),
            Err(e) => first_error = Some(e),
            Ok(_) => {}
        }
    }
    first_error.map_or(Ok(0), Err)
}

/// Restart upstream `id` (of server `what`, or `what` is the id).
fn restart_one(m: &Manifest, what: &str, id: &str) -> Result<i32> {
    let timeout = crate::state::settings::start_timeout() + STOP_TIMEOUT;
    let (code, body) = control(m, "POST", &format!("/api/restart/{id}"), timeout)?;
    let shown = if what == id {
        id.to_string()
    } else {
        format!("{what} (upstream {id})")
    };
    match code {
        200 => {
            println!("restarted {shown} (pid {})", body["pid"]);
            Ok(0)
        }
        _ => Err(Error::Daemon(format!(
            "cannot restart {shown}: {}",
            body["error"].as_str().unwrap_or("unknown error")
        ))),
    }
}
