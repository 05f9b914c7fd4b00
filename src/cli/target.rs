//! What the ID|NAME argument of `logs` and `restart` names: an upstream
//! id of the running daemon first, then a configured server's name. It
//! only reads: the daemon's status, or the config file when none runs.

use super::{CONTROL_TIMEOUT, control, live_daemon};
use crate::error::{Error, Result};
use crate::state::home::Home;
use serde_json::Value;

/// What the argument of `logs` and `restart` names, by the daemon's status.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// An upstream id the daemon knows, or nothing it knows (the caller
    /// treats it as an id: its log file may remain).
    Upstream,
    /// A configured server, with its upstreams running now.
    Server {
        upstreams: Vec<String>,
        state: String,
    },
}

/// An upstream id first (ids are what `status` lists), then a configured
/// server's name.
pub(super) fn target(status: &Value, arg: &str) -> Target {
    let is_upstream = status["upstreams"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|u| u["id"] == arg);
    let server = status["config"]["servers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == arg);
    match server {
        Some(s) if !is_upstream => Target::Server {
            upstreams: crate::mcp::jsonrpc::strings(&s["upstreams"]),
            state: s["state"].as_str().unwrap_or("stopped").to_string(),
        },
        _ => Target::Upstream,
    }
}

/// The running daemon's status, or None when no daemon runs.
pub(super) fn daemon_status(
    home: &Home,
) -> Result<Option<(crate::state::manifest::Manifest, Value)>> {
    let Some(m) = live_daemon(home)? else {
        return Ok(None);
    };
    let (code, body) = control(&m, "GET", "/api/status", CONTROL_TIMEOUT)?;
    if code != 200 {
        return Err(Error::Daemon(format!(
            "daemon pid {} answered HTTP {code}: {body}",
            m.pid
        )));
    }
    Ok(Some((m, body)))
}

/// Whether `name` is a server of the config file (for `logs` and `restart`
/// with no daemon running).
pub(super) fn configured(name: &str) -> bool {
    crate::config::path()
        .ok()
        .and_then(|p| crate::config::load(&p).ok())
        .is_some_and(|c| c.get(name).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_argument_is_an_upstream_id_before_a_server_name() {
        let st = serde_json::json!({
            "upstreams": [{"id": "memory"}, {"id": "server-memory-00ab"}],
            "config": {"servers": [
                {"name": "memory", "state": "running", "upstreams": ["server-memory-00ab"]},
                {"name": "notes", "state": "running", "upstreams": ["a-1", "a-2"]},
                {"name": "off", "state": "disabled", "upstreams": []}]}
        });
        assert_eq!(target(&st, "memory"), Target::Upstream);
        assert_eq!(target(&st, "server-memory-00ab"), Target::Upstream);
        assert_eq!(target(&st, "unknown"), Target::Upstream);
        assert_eq!(
            target(&st, "notes"),
            Target::Server {
                upstreams: vec!["a-1".into(), "a-2".into()],
                state: "running".into()
            }
        );
        assert_eq!(
            target(&st, "off"),
            Target::Server {
                upstreams: vec![],
                state: "disabled".into()
            }
        );
    }
}
