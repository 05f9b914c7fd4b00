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
        lock(&self.sessions)
            .values()
            .map(|s| SessionInfo {
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
