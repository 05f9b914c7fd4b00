//! Keeping a running child in step and alive: the lowest log level any
//! session asked for, and health pings that kill a child which stops
//! answering (so that the restart path runs).

use super::*;

impl Upstream {
    /// Send the child the lowest level any session asked for, if it changed.
    pub(super) fn apply_level(&self, leaving: Option<&str>) {
        let min = self
            .live_sessions()
            .iter()
            .filter(|s| Some(s.id.as_str()) != leaving)
            .filter_map(|s| s.level())
            .min_by_key(|l| session::severity(l));
        let Some(min) = min else { return };
        let generation = {
            let mut st = self.lock();
            if st.applied_level.as_deref() == Some(min.as_str()) || st.phase != Phase::Running {
                return;
            }
            st.applied_level = Some(min.clone());
            st.generation
        };
        let _ = self.send_internal("logging/setLevel", json!({"level": min}), generation);
    }

    pub(super) fn start_health(self: &Arc<Self>, generation: u64) {
        if self.tuning.ping_every.is_zero() {
            return;
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("health-{}", self.id))
            .spawn(move || me.health_loop(generation));
        if let Err(e) = spawned {
            crate::log!("upstream {}: no health pings: {e}", self.id);
        }
    }

    pub(super) fn health_loop(self: Arc<Self>, generation: u64) {
        let mut failures = 0;
        loop {
            if !self.wait_unchanged(generation, Phase::Running, self.tuning.ping_every) {
                return;
            }
            let timeout = PING_TIMEOUT.min(self.tuning.ping_every.max(Duration::from_millis(100)));
            // A ping that cannot even be queued (the child stopped reading
            // its stdin) is a missed ping too.
            let answered = match self.send_internal("ping", json!({}), generation) {
                Ok((rx, id)) => {
                    let answered = rx
                        .recv_timeout(timeout)
                        .is_ok_and(|m| m.raw_at(&["result"]).is_some());
                    self.lock().pending.remove(&id);
                    answered
                }
                Err(_) => {
                    if !self.wait_unchanged(generation, Phase::Running, timeout) {
                        return;
                    }
                    false
                }
            };
            if answered {
                failures = 0;
                continue;
            }
            failures += 1;
            crate::log!(
                "upstream {} missed a health ping ({failures}/{PING_FAILURES})",
                self.id
            );
            if failures >= PING_FAILURES {
                crate::log!(
                    "upstream {} does not answer pings; killing it so it restarts",
                    self.id
                );
                // Only a running child still unreaped (its pid is cleared
                // before anyone reaps it) is signalled.
                let st = self.lock();
                if st.generation == generation
                    && st.phase == Phase::Running
                    && let Some(pid) = st.pid
                {
                    let _ = platform::signal_group(pid, platform::Signal::Kill);
                }
                return;
            }
        }
    }

    /// Wait `for_`, waking early on state changes; false as soon as the
    /// child's generation or phase is no longer the given one (or it retired).
    pub(super) fn wait_unchanged(&self, generation: u64, phase: Phase, for_: Duration) -> bool {
        let deadline = Instant::now() + for_;
        let mut st = self.lock();
        loop {
            if st.generation != generation || st.phase != phase || self.is_retired() {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}
