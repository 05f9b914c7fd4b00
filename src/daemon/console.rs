//! The daemon's side of the web console: what `crate::console` may see
//! and do, through its `Backend` trait (the console never imports the
//! daemon).

use super::Daemon;
use crate::console::{Backend, Failure, SessionInfo};
use crate::pool::lock;
use serde_json::Value;

impl Backend for Daemon {
    fn status(&self) -> Value {
        Daemon::status(self)
    }

    fn sessions(&self) -> Vec<SessionInfo> {
        let hubs = self.hub_members();
        lock(&self.sessions)
            .values()
            .map(|s| SessionInfo {
                hub: hubs.get(&s.id).cloned(),
                id: s.id.clone(),
                upstream: s.upstream.id.clone(),
                client_name: s.client_name.clone(),
                protocol: s.version.clone(),
                bridge: s.client.clone(),
                cwd: s.upstream.spec.cwd.clone(),
            })
            .collect()
    }

    fn log_lines(&self, id: &str, n: usize, after: Option<u64>) -> Option<Vec<(u64, String)>> {
        let up = self.upstream(id)?;
        Some(up.logbook.lines(n, after, std::time::Duration::ZERO))
    }

    fn restart(&self, id: &str) -> Result<Option<u32>, Failure> {
        let up = self
            .upstream(id)
            .ok_or_else(|| Failure::NotFound(format!("no upstream {id} in this daemon")))?;
        crate::log!("upstream {id}: restart requested from the console");
        up.restart().map_err(Failure::Failed)?;
        Ok(up.pid())
    }

    fn stop_server(&self, id: &str) -> Result<(), Failure> {
        let up = self
            .upstream(id)
            .ok_or_else(|| Failure::NotFound(format!("no upstream {id} in this daemon")))?;
        up.stop("stopped from the console");
        Ok(())
    }

    /// Enable or disable the configured server that upstream `id` runs (or
    /// the server named `id`): the config file is edited as `mcpshare
    /// enable` edits it, and the daemon applies it as any edit (see
    /// `servers::watch_config`).
    fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), Failure> {
        let name = self
            .upstream(id)
            .and_then(|u| u.spec.server.clone())
            .or_else(|| self.servers.config().get(id).map(|s| s.name.clone()))
            .ok_or_else(|| {
                Failure::NotFound(format!(
                    "{id} is not a server of {}: only configured servers are enabled or disabled",
                    self.servers.path.display()
                ))
            })?;
        crate::config::update(&self.servers.path, None, |text| {
            match crate::config::edit::set_enabled(text, &name, enabled) {
                Ok(Some(out)) => Ok(out),
                Ok(None) => Err(crate::error::Error::Usage(format!("no server '{name}'"))),
                Err(e) => Err(crate::error::Error::Usage(e)),
            }
        })
        .map_err(|e| Failure::Failed(e.to_string()))?;
        crate::log!(
            "server {name}: {} from the console",
            if enabled { "enabled" } else { "disabled" }
        );
        Ok(())
    }

    fn end_session(&self, id: &str, reason: &str) {
        crate::log!("session {id}: {reason}");
        Daemon::end_session(self, id, reason);
    }

    fn stop_daemon(&self, reason: &str) {
        self.request_stop(reason);
    }

    fn doctor(&self) -> Value {
        (self.doctor)(&self.home)
    }

    fn is_stopping(&self) -> bool {
        Daemon::is_stopping(self)
    }
}
