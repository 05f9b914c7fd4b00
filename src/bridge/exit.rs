//! How a bridge ends: the parent watchdog (the client that started it is
//! gone), the end-of-input drain, and `exit`, which ends the session and
//! answers what is still open. Every wait here is bounded; it never starts
//! an attach.

use super::Bridge;
use crate::mcp::jsonrpc;
use crate::pool::lock;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long requests still in flight at stdin EOF get to finish.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Short enough that a bridge told to stop is gone within a second.
const DELETE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the report of the bridge's stop may take (with the DELETE and
/// the last writes, an exit stays under a second).
const STOPPED_REPORT_TIMEOUT: Duration = Duration::from_millis(200);

/// How long an exiting bridge waits for a write to stdout in progress
/// before it answers what is still open.
const EXIT_WRITE_WAIT: Duration = Duration::from_millis(200);

/// How often a bridge checks that the client that started it still lives.
pub const WATCHDOG_EVERY: Duration = Duration::from_secs(1);

#[cfg(unix)]
fn watchdog_every() -> Duration {
    crate::state::settings::env_millis("MCPSHARE_WATCHDOG_MS", WATCHDOG_EVERY)
        .max(Duration::from_millis(10))
}

/// Exit when the client that started us is gone: our parent changed.
pub(super) fn watch_parent(bridge: &Arc<Bridge>) {
    #[cfg(unix)]
    {
        let parent = std::os::unix::process::parent_id();
        let b = bridge.clone();
        let (never, tick) = std::sync::mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                let _never = never;
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    tick.recv_timeout(watchdog_every())
                {
                    if std::os::unix::process::parent_id() != parent {
                        crate::log!(
                            "the client that started this bridge (pid {parent}) is gone; exiting"
                        );
                        b.exit("mcpshare run is exiting: the client that started it is gone");
                    }
                }
            });
        if let Err(e) = spawned {
            crate::log!("cannot start the parent watchdog: {e}");
        }
    }
    #[cfg(not(unix))]
    let _ = bridge;
}

impl Bridge {
    /// End the session at the daemon (best effort, bounded), answer every
    /// request still open with an error saying `why`, remove the registry
    /// record, and exit 0. Bounded: under a second even with a hung daemon
    /// and a client that stopped reading.
    pub(super) fn exit(&self, why: &str) -> ! {
        if self.stopping.swap(true, Ordering::AcqRel) {
            // Another thread is exiting; it ends the process shortly.
            let _wait = lock(&self.exiting);
            std::process::exit(0)
        }
        let _exiting = lock(&self.exiting);
        self.wake_attach_waiters();
        let conn = {
            let mut link = lock(&self.link);
            link.conn.take().or_else(|| link.restoring.take())
        };
        if let Some(conn) = conn {
            self.reporter.note("stopped", Some(why.to_string()));
            self.reporter.flush(&conn.client, STOPPED_REPORT_TIMEOUT);
            let _ = conn
                .client
                .mcp_delete(&conn.path, &conn.headers(), DELETE_TIMEOUT);
        }
        if let Some(turn) = self.out.turn(Some(EXIT_WRITE_WAIT)) {
            let open = std::mem::take(&mut lock(&self.requests).open);
            for (k, o) in open {
                let Ok(id) = serde_json::from_str::<Value>(&k) else {
                    continue;
                };
                for _ in 0..o.count {
                    if !turn.write(&jsonrpc::error(id.clone(), jsonrpc::UNAVAILABLE, why)) {
                        break;
                    }
                }
            }
        }
        lock(&self.registration).take();
        std::process::exit(0)
    }

    /// Requests waiting for another's attach look again (the bridge may be exiting).
    fn wake_attach_waiters(&self) {
        drop(lock(&self.link));
        self.link_changed.notify_all();
    }

    /// At end of input: give requests (and batches) up to `timeout` to be
    /// answered. Those waiting for an attach are not waited for: no attach
    /// starts after end of input, and `exit` answers them with an error.
    pub(super) fn drain(&self, timeout: Duration) {
        self.closing.store(true, Ordering::Release);
        self.wake_attach_waiters();
        let r = lock(&self.requests);
        let _ = self.settled.wait_timeout_while(r, timeout, |r| {
            // Attached, queued requests go out too: wait for them as well.
            let attached = lock(&self.link).conn.is_some();
            r.batches > 0 || r.open.values().any(|o| o.sent || attached)
        });
    }
}
