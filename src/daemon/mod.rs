//! The daemon: holds `daemon.lock` for its whole life, serves HTTP on an
//! ephemeral loopback port, owns the upstreams and the sessions, runs the
//! configured servers (`servers`), heartbeats into the manifest, reloads
//! its config on SIGHUP, and on SIGTERM/SIGINT or `mcpshare stop` stops
//! every upstream and removes only the files it owns.

use crate::error::{Error, Result};
use crate::mux::identity::Spec;
use crate::mux::session::Session;
use crate::mux::upstream::{Tuning, Upstream};
use crate::pool::lock;
use crate::state::home::Home;
use crate::state::manifest::{self, Manifest};
use crate::state::registry::{Record, Registration};
use crate::state::settings::Settings;
use crate::state::version::{self, version};
use crate::supervisor::child::Spawner;

mod console;
pub mod endpoint;
pub mod hub;
pub mod replay;
mod routes;
pub mod servers;

use crate::net::http;
use crate::state::lock;
use crate::{log, platform};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a second daemon keeps trying for the lock before giving up,
/// so that a client's brief probe of the lock never defeats a real start.
const LOCK_RETRY_FOR: Duration = Duration::from_millis(250);
/// How often the reaper looks for idle upstreams and an idle daemon.
const REAP_EVERY: Duration = Duration::from_millis(500);
/// How long a daemon handing over lets requests in flight finish.
pub const HANDOFF_DRAIN: Duration = Duration::from_secs(5);
/// How long a stopping daemon waits for the answers it gave its calls in
/// flight to be written to their clients.
const ANSWERS_FLUSH: Duration = Duration::from_secs(1);
/// How often the daemon checks whether `daemon.log` needs rotating.
const LOG_CHECK_EVERY: Duration = Duration::from_secs(1);
/// How often the daemon forgets the logs of upstreams long gone.
const FORGET_LOGS_EVERY: Duration = Duration::from_secs(3600);
/// The longest `mcpshare logs -f` waits for a line in one request.
const LOG_WAIT_MAX: Duration = Duration::from_secs(10);

pub struct Daemon {
    pub home: Home,
    token: String,
    port: u16,
    manifest: Mutex<Manifest>,
    upstreams: Mutex<HashMap<String, Arc<Upstream>>>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    spawner: Spawner,
    stop_tx: Mutex<Sender<String>>,
    stopping: AtomicBool,
    /// One permit per MCP request being answered, so that a stop can wait
    /// for the answers it gave to reach their clients.
    pub calls: Arc<crate::pool::Limit>,
    isolated_seq: AtomicU64,
    pub max_message: usize,
    pub request_timeout: Duration,
    /// What the MCP endpoints wrote on SSE streams, for `Last-Event-ID`.
    pub replay: replay::Store,
    tuning: Tuning,
    upstream_idle: Duration,
    session_idle: Duration,
    daemon_idle: Duration,
    servers: servers::Servers,
    /// Open hub sessions, by id.
    hubs: Mutex<HashMap<String, Arc<hub::HubSession>>>,
    /// What the hub last saw of each configured server.
    catalog: hub::Catalog,
    /// The names the hub gave, kept so that they stay.
    names: hub::Registry,
    /// Each upstream's lists as the hub last asked for them.
    hub_lists: hub::ListsSeen,
    /// The web console's credentials and bridge reports.
    console: crate::console::Console,
    doctor: crate::console::DoctorFn,
}

pub fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    platform::random_bytes(&mut bytes).map_err(|e| Error::io("cannot read random bytes", e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Connections that may wait for accept: a burst of clients attaching at
/// once, or requests beyond the connection limit.
const ACCEPT_BACKLOG: i32 = 1024;

/// Run the daemon in the foreground until stopped; `doctor` gives the
/// console the doctor's findings (the doctor sits above the daemon).
pub fn run(home: Home, doctor: crate::console::DoctorFn) -> Result<()> {
    // Nothing of the client app that started us stays open here or in
    // the servers we start (a pipe it waits on to close, a file).
    platform::close_inherited();
    let settings = Settings::from_env()?;
    let config_path = crate::config::path()?;
    // Never pin the directory of whoever started us (a client's project,
    // a mount to be unmounted); every path the daemon uses is absolute.
    std::env::set_current_dir("/").map_err(|e| Error::Path("/".into(), e))?;
    let lock_path = home.daemon_lock();
    let deadline = Instant::now() + LOCK_RETRY_FOR;
    let held = lock::wait_exclusive(&lock_path, deadline)
        .map_err(|e| Error::Path(lock_path.clone(), e))?
        .ok_or(Error::AlreadyRunning)?;

    let (stop_tx, stop_rx) = channel::<String>();
    let signal_tx = stop_tx.clone();
    let (reload_tx, reload_rx) = channel::<String>();
    let mut signalled = false;
    platform::on_termination(move |sig| {
        #[cfg(unix)]
        if sig == libc::SIGHUP {
            let _ = reload_tx.send("SIGHUP".into());
            return;
        }
        #[cfg(not(unix))]
        let _ = &reload_tx;
        if signalled {
            // The stop under way already ends every upstream within its
            // grace; saying so shows the signal arrived.
            log!("signal {sig} again while stopping: the stop under way continues");
        }
        signalled = true;
        let _ = signal_tx.send(format!("signal {sig}"));
    })
    .map_err(|e| Error::io("cannot install signal handling", e))?;

    // Before serving anything: the process groups a killed predecessor left
    // are stopped first, so a stateful server never runs twice at once.
    crate::state::registry::sweep(&home.processes_dir());

    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::io("cannot listen on 127.0.0.1", e))?;
    if let Err(e) = platform::widen_backlog(&listener, ACCEPT_BACKLOG) {
        log!("cannot widen the accept queue: {e}");
    }
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("cannot read the bound port", e))?;
    let pid = std::process::id();
    let record = Record {
        bind: Some(format!("127.0.0.1:{port}")),
        ..Record::for_self("daemon", "http")
    };
    let registration = Registration::write(&home.processes_dir(), record)
        .map_err(|e| Error::Path(home.processes_dir(), e))?;
    let now = log::unix_millis();
    let m = Manifest {
        schema: manifest::SCHEMA,
        version: version(),
        protocol: manifest::PROTOCOL,
        pid,
        start_time: platform::start_time(pid).unwrap_or(0),
        port,
        url: manifest::url_for(port),
        token: random_token()?,
        started_at: now,
        heartbeat_at: now,
        exe: std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    };
    m.write(&home.manifest())
        .map_err(|e| Error::Path(home.manifest(), e))?;

    let configured = servers::Servers::load(config_path);
    let daemon = Arc::new(Daemon {
        token: m.token.clone(),
        port,
        manifest: Mutex::new(m.clone()),
        upstreams: Mutex::new(HashMap::new()),
        sessions: Mutex::new(HashMap::new()),
        spawner: Spawner::start().map_err(|e| Error::io("cannot start the spawner thread", e))?,
        stop_tx: Mutex::new(stop_tx),
        stopping: AtomicBool::new(false),
        calls: crate::pool::Limit::new(usize::MAX),
        isolated_seq: AtomicU64::new(1),
        max_message: settings.max_message,
        request_timeout: settings.request_timeout,
        replay: replay::Store::default(),
        tuning: Tuning {
            start_timeout: settings.start_timeout,
            ping_every: settings.ping_every,
            processes_dir: home.processes_dir(),
            request_timeout: settings.request_timeout,
            asking_dir: home.dir().join("asking"),
            log_max_bytes: settings.log_max_bytes,
            idle: None,
            limits: Default::default(),
        },
        upstream_idle: settings.upstream_idle,
        session_idle: settings.session_idle,
        daemon_idle: settings.daemon_idle,
        names: hub::Registry::load(
            &home.dir().join("catalog"),
            configured
                .error()
                .is_none()
                .then(|| configured.config())
                .as_ref(),
        ),
        servers: configured,
        hubs: Mutex::new(HashMap::new()),
        catalog: hub::Catalog::new(home.dir().join("catalog")),
        hub_lists: Mutex::new(HashMap::new()),
        console: crate::console::Console::new(port),
        doctor,
        home,
    });
    {
        let d = daemon.clone();
        http::serve_with(
            listener,
            http::Config {
                max_body: daemon.max_message,
                max_conns: crate::net::connection_budget(),
                head_timeout: settings.head_timeout,
                body_timeout: settings.body_timeout,
                guard: Some({
                    let (port, token) = (daemon.port, daemon.token.clone());
                    Arc::new(move |req: &http::Request| routes::refuse(req, port, &token))
                }),
            },
            Arc::new(move |req| routes::route(&d, req)),
        )
        .map_err(|e| Error::io("cannot start the HTTP thread", e))?;
    }
    let (beat_stop, beat_rx) = channel::<()>();
    {
        let d = daemon.clone();
        std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || {
                let mut last_beat = Instant::now();
                let mut idle_since = Instant::now();
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = beat_rx.recv_timeout(REAP_EVERY) {
                    if last_beat.elapsed() >= manifest::HEARTBEAT_EVERY {
                        d.heartbeat();
                        last_beat = Instant::now();
                    }
                    if !d.reap_idle() {
                        idle_since = Instant::now();
                    } else if !d.daemon_idle.is_zero() && idle_since.elapsed() >= d.daemon_idle {
                        d.request_stop(&format!(
                            "idle for {} s with no upstream and no session (MCPSHARE_DAEMON_IDLE_SECS)",
                            d.daemon_idle.as_secs()
                        ));
                    }
                }
            })
            .map_err(|e| Error::io("cannot start the heartbeat thread", e))?;
    }

    // Readiness goes to whoever started us (a pipe when spawned by a
    // client); afterwards stdout joins the log.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "mcpshare daemon ready on {} (pid {pid})",
        manifest::url_for(port)
    );
    let _ = out.flush();
    drop(out);
    let _ = platform::stdout_to_stderr();
    log!(
        "daemon started: pid {pid}, port {port}, home {}, version {}",
        daemon.home.dir().display(),
        version()
    );
    let (house_stop, house_rx) = channel::<()>();
    {
        let d = daemon.clone();
        std::thread::Builder::new()
            .name("housekeeping".into())
            .spawn(move || d.keep_house(&house_rx))
            .map_err(|e| Error::io("cannot start the housekeeping thread", e))?;
    }
    daemon.start_eager(&daemon.servers.config());
    {
        let d = daemon.clone();
        std::thread::Builder::new()
            .name("config".into())
            .spawn(move || d.watch_config(&reload_rx))
            .map_err(|e| Error::io("cannot start the config thread", e))?;
    }

    let reason = stop_rx.recv().unwrap_or_else(|_| "all senders gone".into());
    drop(beat_stop);
    drop(house_stop);
    daemon.shutdown(&reason);
    drop(registration);
    drop(held);
    Ok(())
}

/// Do two specs name the same upstream? What the id hashes, compared in
/// full (see `Spec::identity`).
fn same_identity(a: &Spec, b: &Spec) -> bool {
    a.identity() == b.identity()
}

/// The id for a spec whose hash gives `base`. `taken(id)` says whether
/// an upstream already has `id` and, if so, whether it is the same
/// identity. The id is a 64-bit hash: on a collision with another identity
/// (another API key, say) the new one gets the first free `base-cN`, so
/// two identities never share a server.
fn unshared_id(base: &str, taken: impl Fn(&str) -> Option<bool>) -> String {
    let mut id = base.to_string();
    for n in 1u64.. {
        if taken(&id) != Some(false) {
            break;
        }
        id = format!("{base}-c{n}");
    }
    id
}

impl Daemon {
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub fn request_stop(&self, reason: &str) {
        let tx = lock(&self.stop_tx);
        let _ = tx.send(reason.to_string());
    }

    /// Off the start-up path, so clients need not wait: clear the temp
    /// files a predecessor left (its process groups and records are swept
    /// before serving, in `run`), then until `stop` closes, rotate
    /// `daemon.log` by size and forget the logs of upstreams long gone.
    fn keep_house(&self, stop: &std::sync::mpsc::Receiver<()>) {
        for dir in [self.home.dir().to_path_buf(), self.home.processes_dir()] {
            for path in crate::state::home::sweep_temp_files(&dir) {
                log!("removed stale temporary file {}", path.display());
            }
        }
        self.forget_old_logs();
        let max_bytes = self.tuning.log_max_bytes;
        let mut forgot = Instant::now();
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            stop.recv_timeout(LOG_CHECK_EVERY)
        {
            let path = self.home.daemon_log();
            match log::rotate_own_log(&path, max_bytes, log::DAEMON_LOGS_KEPT) {
                Ok(true) => log!(
                    "{} passed {max_bytes} bytes (MCPSHARE_LOG_MAX_BYTES): the previous part is {}.1",
                    path.display(),
                    path.display()
                ),
                Ok(false) => {}
                Err(e) => log!("cannot rotate {}: {e}", path.display()),
            }
            if forgot.elapsed() >= FORGET_LOGS_EVERY {
                self.forget_old_logs();
                forgot = Instant::now();
            }
        }
    }

    fn forget_old_logs(&self) {
        // Held across the scan: an upstream registered meanwhile would
        // open a file this could otherwise remove under it.
        let ups = lock(&self.upstreams);
        let removed = crate::supervisor::logbook::forget_old_logs(
            &self.home.logs_dir(),
            crate::supervisor::logbook::LOG_RETENTION,
            |id| ups.contains_key(id),
        );
        drop(ups);
        for path in removed {
            log!(
                "removed {}: its upstream is gone and it was not written for {} days",
                path.display(),
                crate::supervisor::logbook::LOG_RETENTION.as_secs() / 86_400
            );
        }
    }

    /// The upstream for this identity, created (not started) if new.
    pub fn register(&self, spec: Spec) -> Arc<Upstream> {
        self.register_tuned(spec, None)
    }

    /// As [`Daemon::register`], with a configured server's own settings.
    pub fn register_tuned(
        &self,
        spec: Spec,
        server: Option<&crate::config::Server>,
    ) -> Arc<Upstream> {
        let mut id = spec.id();
        if spec.isolated {
            id = format!(
                "{id}-i{}",
                self.isolated_seq.fetch_add(1, Ordering::Relaxed)
            );
        }
        let mut ups = lock(&self.upstreams);
        let base = id;
        let id = unshared_id(&base, |taken| {
            ups.get(taken).map(|up| same_identity(&up.spec, &spec))
        });
        if id != base {
            log!("upstream id {base} is taken by another identity (a hash collision): using {id}");
        }
        ups.entry(id.clone())
            .or_insert_with(|| {
                match &spec.server {
                    // Its arguments may hold expanded `${VAR}` secrets.
                    Some(name) => log!(
                        "upstream {id} registered: configured server {name}, {} in {}",
                        spec.command,
                        spec.cwd
                    ),
                    None => log!(
                        "upstream {id} registered: {} {:?} in {}",
                        spec.command,
                        spec.args,
                        spec.cwd
                    ),
                }
                let log_path = self.home.upstream_log(&id);
                let tuning = servers::tuning_for(&self.tuning, &spec, server);
                Arc::new(Upstream::new(
                    id,
                    spec,
                    log_path,
                    self.spawner.clone(),
                    tuning,
                ))
            })
            .clone()
    }

    pub fn upstream(&self, id: &str) -> Option<Arc<Upstream>> {
        lock(&self.upstreams).get(id).cloned()
    }

    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.sessions).get(id).cloned()
    }

    pub fn new_session(
        &self,
        upstream: &Arc<Upstream>,
        version: String,
        capabilities: Value,
        client: Option<platform::ProcessId>,
        client_name: Option<String>,
    ) -> Arc<Session> {
        let id = random_token().unwrap_or_else(|_| format!("{:x}", log::unix_millis()));
        let session = Arc::new(Session::new(
            id.clone(),
            upstream.clone(),
            version,
            capabilities,
            client,
            client_name,
        ));
        upstream.attach(&session);
        lock(&self.sessions).insert(id, session.clone());
        session
    }

    pub fn end_session(&self, id: &str, reason: &str) {
        self.replay.forget(id);
        let Some(session) = lock(&self.sessions).remove(id) else {
            return;
        };
        session.close(reason);
        let up = session.upstream.clone();
        if up.spec.isolated && up.session_count() == 0 {
            // An isolated upstream belongs to its one session.
            lock(&self.upstreams).remove(&up.id);
            let _ = std::thread::Builder::new()
                .name(format!("stop-{}", up.id))
                .spawn(move || up.stop("its one session ended"));
        }
    }

    /// End the sessions whose bridge process is gone, whatever phase they
    /// were in (before `initialized`, mid-call, with or without a stream),
    /// and those whose client stopped reading.
    fn reap_sessions(&self) {
        let ending: Vec<(String, String)> = lock(&self.sessions)
            .values()
            .filter_map(|s| {
                if s.is_stalled() {
                    return Some((s.id.clone(), "its client stopped reading".to_string()));
                }
                let Some(c) = s.client.as_ref() else {
                    let idle = s.idle_for().filter(|t| *t >= self.session_idle)?;
                    return Some((s.id.clone(), format!("idle for {} s", idle.as_secs())));
                };
                (!platform::same_process(c))
                    .then(|| (s.id.clone(), format!("client process {} exited", c.pid)))
            })
            .collect();
        for (id, why) in ending {
            log!("session {id}: {why}; ending it");
            self.end_session(&id, &why);
        }
    }

    /// Stop upstreams idle past their grace period. True when the daemon
    /// itself is idle: no upstream, no session and no console page left.
    fn reap_idle(&self) -> bool {
        self.reap_sessions();
        self.reap_hubs(self.session_idle);
        let mut retired = Vec::new();
        let mut quiet = Vec::new();
        {
            let mut ups = lock(&self.upstreams);
            ups.retain(|_, up| {
                // A configured server's own idle time (zero: never), else
                // the drop-in rule: no session for MCPSHARE_UPSTREAM_IDLE_MS.
                let limit = up.tuning().idle.unwrap_or(self.upstream_idle);
                if up.tuning().idle.is_some_and(|t| t.is_zero()) {
                    return true;
                }
                let idle = up.idle_for().is_some_and(|t| t >= limit);
                if idle {
                    up.retire();
                    retired.push((up.clone(), limit));
                } else if up.tuning().idle.is_some() && up.quiet_for().is_some_and(|t| t >= limit) {
                    quiet.push((up.clone(), limit));
                }
                !idle
            });
        }
        for (up, limit) in retired {
            log!(
                "upstream {} idle for {} ms with no session: stopping it",
                up.id,
                limit.as_millis()
            );
            let _ = std::thread::Builder::new()
                .name(format!("stop-{}", up.id))
                .spawn(move || up.stop("idle with no session"));
        }
        // Sessions stay attached: their next call starts it again.
        for (up, limit) in quiet {
            log!(
                "upstream {} had no call for {} s: stopping its child until the next call",
                up.id,
                limit.as_secs()
            );
            let _ = std::thread::Builder::new()
                .name(format!("stop-{}", up.id))
                .spawn(move || {
                    up.pause_if_quiet(limit);
                });
        }
        let no_upstreams = lock(&self.upstreams).is_empty();
        // An open console page keeps the daemon it watches.
        no_upstreams && lock(&self.sessions).is_empty() && !self.console.watched()
    }

    /// Hand over to a newer mcpshare: refuse new sessions, let requests in
    /// flight finish (bounded), then stop.
    fn hand_over(&self, newer: &str) {
        self.stopping.store(true, Ordering::Release);
        log!(
            "handing over to mcpshare {newer}: draining requests in flight (at most {} s)",
            HANDOFF_DRAIN.as_secs()
        );
        let deadline = Instant::now() + HANDOFF_DRAIN;
        let (_never, tick) = channel::<()>();
        while Instant::now() < deadline && self.inflight() > 0 {
            let _ = tick.recv_timeout(Duration::from_millis(20));
        }
        self.request_stop(&format!("handed over to mcpshare {newer}"));
    }

    fn inflight(&self) -> usize {
        let ups: Vec<Arc<Upstream>> = lock(&self.upstreams).values().cloned().collect();
        ups.iter().map(|u| u.inflight()).sum()
    }

    fn heartbeat(&self) {
        let mut m = lock(&self.manifest);
        // Only ever rewrite our own manifest.
        match Manifest::read(&self.home.manifest()) {
            Some(disk) if disk.pid == m.pid && disk.token == m.token => {}
            _ => {
                log!(
                    "manifest {} is no longer ours; rewriting it",
                    self.home.manifest().display()
                );
            }
        }
        m.heartbeat_at = log::unix_millis();
        if let Err(e) = m.write(&self.home.manifest()) {
            log!(
                "heartbeat: cannot write {}: {e}",
                self.home.manifest().display()
            );
        }
    }

    pub fn status(&self) -> Value {
        let m = lock(&self.manifest).clone();
        let mut ups: Vec<_> = lock(&self.upstreams).values().map(|u| u.status()).collect();
        ups.sort_by(|a, b| a.id.cmp(&b.id));
        let sessions = lock(&self.sessions).len();
        let mut specs: Vec<(String, Spec)> = lock(&self.upstreams)
            .iter()
            .map(|(id, u)| (id.clone(), u.spec.clone()))
            .collect();
        specs.sort_by(|a, b| a.0.cmp(&b.0));
        let near = crate::mux::identity::near_misses(&specs);
        let specs_by_id: HashMap<String, String> = specs
            .iter()
            .filter_map(|(id, s)| Some((id.clone(), s.server.clone()?)))
            .collect();
        // Each upstream's attached clients, by the name in their clientInfo.
        let mut clients: HashMap<String, Vec<String>> = HashMap::new();
        for s in lock(&self.sessions).values() {
            clients
                .entry(s.upstream.id.clone())
                .or_default()
                .push(s.client_name.clone().unwrap_or_else(|| "?".into()));
        }
        let ups: Vec<Value> = ups
            .into_iter()
            .map(|u| {
                let mut names = clients.remove(&u.id).unwrap_or_default();
                names.sort();
                let mut v = serde_json::to_value(u).unwrap_or(Value::Null);
                v["clients"] = json!(names);
                if let Some(server) = specs_by_id.get(v["id"].as_str().unwrap_or("")) {
                    v["server"] = json!(server);
                    v["tools"] = json!(self.exposed_tools(server));
                }
                v
            })
            .collect();
        json!({
            "daemon": {
                "pid": m.pid,
                "port": m.port,
                "version": m.version,
                "protocol": m.protocol,
                "started_at": m.started_at,
                "heartbeat_at": m.heartbeat_at,
                "url": m.url,
                "home": self.home.dir().display().to_string(),
                "sessions": sessions,
                "hub_sessions": self.hub_sessions(),
            },
            "upstreams": ups,
            "config": self.servers_status(),
            "near_misses": near,
        })
    }

    fn shutdown(&self, reason: &str) {
        self.stopping.store(true, Ordering::Release);
        log!("daemon stopping: {reason}");
        let why = format!("mcpshare daemon stopping ({reason})");
        let sessions: Vec<String> = lock(&self.sessions).keys().cloned().collect();
        for id in sessions {
            self.end_session(&id, &why);
        }
        let ups: Vec<Arc<Upstream>> = lock(&self.upstreams).drain().map(|(_, u)| u).collect();
        let stoppers: Vec<_> = ups
            .into_iter()
            .filter_map(|u| {
                std::thread::Builder::new()
                    .name(format!("stop-{}", u.id))
                    .spawn({
                        let why = why.clone();
                        move || u.stop(&why)
                    })
                    .ok()
            })
            .collect();
        for s in stoppers {
            let _ = s.join();
        }
        if !self.calls.wait_idle(Instant::now() + ANSWERS_FLUSH) {
            log!("some answers were still being written to their clients");
        }
        let ours = lock(&self.manifest).clone();
        let path = self.home.manifest();
        // Remove the manifest only if it is still ours.
        if Manifest::read(&path).is_some_and(|m| m.pid == ours.pid && m.token == ours.token) {
            let _ = std::fs::remove_file(&path);
        }
        log!("daemon stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(key: &str) -> Spec {
        Spec {
            command: "npx".into(),
            args: vec!["server".into()],
            cwd: "/p".into(),
            env: [("API_KEY".to_string(), key.to_string())].into(),
            global: false,
            isolated: false,
            server: None,
            secret_args: false,
        }
    }

    #[test]
    fn a_hash_collision_never_shares_an_upstream() {
        let a = spec("secret-a");
        let b = spec("secret-b");
        // Force the collision: every spec hashes to "npx-0".
        let mut ups: HashMap<String, Spec> = HashMap::new();
        let mut register = |s: &Spec| {
            let id = unshared_id("npx-0", |taken| {
                ups.get(taken).map(|up| same_identity(up, s))
            });
            ups.entry(id.clone()).or_insert_with(|| s.clone());
            id
        };
        let first = register(&a);
        assert_eq!(first, "npx-0");
        let second = register(&b);
        assert_ne!(second, first, "two API keys share one upstream");
        assert_eq!(register(&a), first, "the same identity must still share");
        assert_eq!(register(&b), second, "the same identity must still share");
        let third = register(&spec("secret-c"));
        assert!(third != first && third != second, "{third}");
    }

    #[test]
    fn identity_ignores_what_the_id_ignores() {
        let a = spec("k");
        let mut b = spec("k");
        b.env.insert("TERM_PROGRAM".into(), "vscode".into());
        assert!(
            same_identity(&a, &b),
            "a terminal variable split an identity"
        );
        let (mut g1, mut g2) = (spec("k"), spec("k"));
        (g1.global, g2.global, g2.cwd) = (true, true, "/elsewhere".into());
        assert!(
            same_identity(&g1, &g2),
            "global ignores the working directory"
        );
        assert!(!same_identity(&a, &g1));
        assert!(!same_identity(&a, &spec("other")));
    }
}
