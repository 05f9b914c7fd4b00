//! `mcpshare run`: the command MCP clients launch. It relays JSON-RPC lines
//! between its stdio and the daemon's Streamable HTTP endpoint for one
//! upstream. stdout carries protocol messages only, one per line; every log
//! goes to stderr. It never hangs on a dead daemon: in-flight requests get
//! errors, and the next request re-runs the election and re-attaches,
//! restoring the session (log level, subscriptions, stream) before it.
//! Every client request gets exactly one answer, on exit too; reading
//! stdin, `ping` and exiting never wait behind an election or an attach.
//!
//! This file holds the bridge's state and `run`, which wires the parts:
//! `stdio` (stdin and stdout), `dispatch` (each client message), `post`
//! (a request's POST and its reply), `requests` (what is owed an answer),
//! `attach` (election and session), `stream` (the GET stream), `restore`
//! (the session's settings, again after a re-attach), `exit` (watchdog,
//! drain, exit).

mod attach;
mod dispatch;
mod exit;
mod post;
mod requests;
mod restore;
mod stdio;
mod stream;

pub use exit::{DRAIN_TIMEOUT, WATCHDOG_EVERY};

use crate::mcp::jsonrpc;
use crate::mux::identity::Spec;
use crate::pool::{Pool, Reservation};
use crate::state::home::Home;
use crate::state::registry::{Record, Registration};
use attach::Link;
use exit::watch_parent;
use requests::Requests;
use restore::Settings;
use serde_json::Value;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};
use stdio::Out;

/// Requests one bridge has open at the daemon at once, each on a worker
/// thread of its own; more wait their turn in a queue. Notifications and
/// responses (cancellations, answers to the server's own requests) never
/// wait, so a full set of calls cannot block its own answers.
pub const MAX_OPEN_REQUESTS: usize = 64;

/// A request's place in the wait for a worker (see [`Bridge::admit`]).
struct Waiting {
    bridge: Arc<Bridge>,
    bytes: usize,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut w = crate::pool::lock(&self.bridge.waiting);
        *w = (w.0.saturating_sub(1), w.1.saturating_sub(self.bytes));
    }
}

/// Requests read but not yet taken by a worker: at most this many, and
/// [`MAX_WAITING_BYTES`] of them (or one message, if larger). A request
/// past either is answered at once with an error instead of being kept.
pub const MAX_WAITING: usize = 1024;
pub const MAX_WAITING_BYTES: usize = 64 << 20;

/// One bridge's state, shared by the thread reading stdin, the workers,
/// the stream threads and the watchdog.
pub struct Bridge {
    home: Home,
    /// What the daemon is asked for: a [`Spec`], or a configured server by
    /// name (the daemon's `POST /api/upstreams` body).
    target: Value,
    max: usize,
    link: Mutex<Link>,
    link_changed: Condvar,
    init: Mutex<Option<Value>>,
    client_initialized: AtomicBool,
    settings: Mutex<Settings>,
    /// Exiting: set once, by the first caller of `exit`.
    stopping: AtomicBool,
    /// Held by the one thread that exits, until the process ends.
    exiting: Mutex<()>,
    /// The client's input ended: nothing new is attached for.
    closing: AtomicBool,
    requests: Mutex<Requests>,
    /// Signalled when a request or batch ends, for the end-of-input drain.
    settled: Condvar,
    out: Out,
    pool: Pool,
    /// Requests (and their bytes) handed to the pool, not yet started.
    waiting: Mutex<(usize, usize)>,
    /// This bridge's registry record, removed on exit.
    registration: Mutex<Option<Registration>>,
    /// What this bridge met, for the daemon's console.
    reporter: crate::console::report::Reporter,
}

pub fn run(home: Home, spec: Spec) -> i32 {
    run_for(home, serde_json::to_value(&spec).unwrap_or(Value::Null))
}

/// `mcpshare run NAME`: the bridge for configured server `server`. The
/// daemon resolves the name in its config; this client's environment is
/// sent for the `${VAR}` references of the entry only.
pub fn run_server(
    home: Home,
    server: &str,
    cwd: &str,
    isolated: bool,
    config: &std::path::Path,
) -> i32 {
    let env: std::collections::BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let target = serde_json::json!({
        "server": server,
        "cwd": cwd,
        "env": env,
        "config": config,
        "isolated": isolated,
    });
    run_for(home, target)
}

/// `mcpshare mcp`: the bridge for the hub, with this selection of servers
/// (`{"profile", "servers", "exclude", "budget", "page_size"}`; see
/// `daemon::hub`).
pub fn run_hub(home: Home, selection: Value) -> i32 {
    run_for(home, serde_json::json!({ "hub": selection }))
}

fn run_for(home: Home, target: Value) -> i32 {
    let registration =
        Registration::write(&home.processes_dir(), Record::for_self("bridge", "stdio"))
            .inspect_err(|e| crate::log!("cannot write the registry record: {e}"))
            .ok();
    let bridge = Arc::new(Bridge {
        home,
        target,
        max: jsonrpc::max_message(),
        link: Mutex::new(Link::default()),
        link_changed: Condvar::new(),
        init: Mutex::new(None),
        client_initialized: AtomicBool::new(false),
        settings: Mutex::new(Settings::default()),
        stopping: AtomicBool::new(false),
        exiting: Mutex::new(()),
        closing: AtomicBool::new(false),
        requests: Mutex::new(Requests::default()),
        settled: Condvar::new(),
        out: Out::default(),
        // Each worker holds at most one connection; so do idle ones and the stream.
        pool: Pool::new(
            "bridge",
            MAX_OPEN_REQUESTS.min(
                crate::net::connection_budget()
                    .saturating_sub(crate::net::client::IDLE_CONNECTIONS + 2),
            ),
        ),
        waiting: Mutex::new((0, 0)),
        registration: Mutex::new(registration),
        reporter: Default::default(),
    });
    let b = bridge.clone();
    let signalled = move |sig| b.exit(&format!("mcpshare run was stopped by signal {sig}"));
    if let Err(e) = crate::platform::on_termination(signalled) {
        crate::log!("cannot install signal handling: {e}");
    }
    watch_parent(&bridge);
    bridge.read_input();
    bridge.drain(DRAIN_TIMEOUT);
    bridge.exit("mcpshare run is exiting: its input ended before the daemon answered")
}

impl Bridge {
    /// Take a request of `bytes` into the wait for a worker, unless that
    /// wait is full ([`MAX_WAITING`], [`MAX_WAITING_BYTES`]). It leaves the
    /// wait when the returned guard is dropped: when its job starts, or
    /// when it was answered without one.
    fn admit(self: &Arc<Self>, bytes: usize) -> Option<Waiting> {
        let mut w = crate::pool::lock(&self.waiting);
        if w.0 >= MAX_WAITING || (w.0 > 0 && w.1 + bytes > MAX_WAITING_BYTES) {
            return None;
        }
        *w = (w.0 + 1, w.1 + bytes);
        Some(Waiting {
            bridge: self.clone(),
            bytes,
        })
    }

    /// Run `job` on the pool: on a worker reserved for it, else as soon as one is free.
    fn spawn(
        self: &Arc<Self>,
        worker: Option<Reservation>,
        job: impl FnOnce(&Arc<Bridge>) + Send + 'static,
    ) {
        let me = self.clone();
        let job = move || job(&me);
        match worker {
            Some(w) => w.run(job),
            None => self.pool.run(job),
        }
    }
}
