//! The servers configured in mcpshare's config file, as the daemon runs
//! them: the last good config (and the error of a newer bad one, with its
//! line and column), each name resolved to an upstream by its share policy,
//! eager servers started with the daemon, idle stops, and reload, which
//! restarts only the servers whose launch fields changed, after their calls
//! in flight. It writes the config file only for the console's enable and
//! disable (see `console.rs`), through `config::update` like the CLI.

use super::Daemon;
use crate::config::{self, Config, Launch, RemoteKind, Server, Share};
use crate::log;
use crate::mux::identity::Spec;
use crate::mux::upstream::{Tuning, Upstream};
use crate::mux::view::ToolView;
use crate::pool::lock;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a reload waits for a changed server's calls in flight before
/// it restarts the server anyway (they then get an error).
pub const RELOAD_DRAIN: Duration = Duration::from_secs(30);
/// A configured server's idle time when its entry names none.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(600);
/// How often the daemon looks at the config file for a change.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// Launchers that may download and install their package on a first start:
/// their start timeout is this many times the usual one.
const INSTALLING_LAUNCHERS: &[&str] = &["npx", "pnpx", "bunx", "uvx", "pipx"];
const LAUNCHER_TIMEOUT_FACTOR: u32 = 3;

/// What a client asks the daemon for by name (`mcpshare run NAME`).
#[derive(Debug, Deserialize)]
pub struct Ask {
    pub server: String,
    /// The client's working directory (for `per-cwd` servers).
    #[serde(default)]
    pub cwd: String,
    /// The client's environment, for `${VAR}` references only: a
    /// configured server starts with the daemon's environment plus its own
    /// `env`, never the client's.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The config file the client read; it must be the daemon's.
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// A session of its own (`per-client`, or `run --isolated NAME`).
    #[serde(default)]
    pub isolated: bool,
}

/// The config file as the daemon last read it.
pub struct Servers {
    pub path: PathBuf,
    loaded: Mutex<Loaded>,
}

struct Loaded {
    /// The last good config.
    config: Config,
    /// Why the file as it is now is not used, with its line and column.
    error: Option<String>,
    /// The bytes last read (None: no file), to notice a change.
    text: Option<Vec<u8>>,
    /// Why a server could not be resolved or started, by name.
    failed: HashMap<String, String>,
}

/// What reading the file again found.
pub enum Refresh {
    Unchanged,
    /// The file is not valid: the last good config stays.
    Invalid(String),
    Changed {
        old: Config,
        new: Config,
    },
}

impl Servers {
    /// Read the config at `path`; a bad file leaves an empty config and the
    /// error to show.
    pub fn load(path: PathBuf) -> Servers {
        let servers = Servers {
            path,
            loaded: Mutex::new(Loaded {
                config: Config::default(),
                error: None,
                text: None,
                failed: HashMap::new(),
            }),
        };
        if let Refresh::Invalid(e) = servers.refresh(true) {
            log!("config: {e}; no configured server runs until it is fixed");
        }
        servers
    }

    pub fn config(&self) -> Config {
        lock(&self.loaded).config.clone()
    }

    pub fn error(&self) -> Option<String> {
        lock(&self.loaded).error.clone()
    }

    /// Read the file again if it changed (always when `force`).
    pub fn refresh(&self, force: bool) -> Refresh {
        let text = std::fs::read(&self.path).ok();
        let mut l = lock(&self.loaded);
        if !force && text == l.text {
            return Refresh::Unchanged;
        }
        l.text = text;
        match config::load(&self.path) {
            Ok(new) => {
                l.error = None;
                if new == l.config {
                    return Refresh::Unchanged;
                }
                let old = std::mem::replace(&mut l.config, new.clone());
                l.failed.retain(|name, _| new.get(name).is_some());
                Refresh::Changed { old, new }
            }
            Err(e) => {
                let e = e.to_string();
                if l.error.as_deref() == Some(&e) {
                    return Refresh::Unchanged;
                }
                l.error = Some(e.clone());
                Refresh::Invalid(e)
            }
        }
    }

    fn set_failed(&self, name: &str, why: Option<String>) {
        let mut l = lock(&self.loaded);
        match why {
            Some(w) => l.failed.insert(name.to_string(), w),
            None => l.failed.remove(name),
        };
    }

    fn failed(&self, name: &str) -> Option<String> {
        lock(&self.loaded).failed.get(name).cloned()
    }
}

/// The upstream spec of a configured server for a client in `cwd` (a
/// remote one's is [`remote_spec`]'s):
/// the daemon's environment plus the entry's `env`, `${VAR}` references
/// resolved by `lookup`, `{cwd}` in the arguments of a `per-cwd` server
/// replaced by the client's directory.
pub fn spec_for(
    server: &Server,
    cwd: &str,
    isolated: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Spec, String> {
    let (command, config_args, env, dir) = match &server.launch {
        Launch::Stdio {
            command,
            args,
            env,
            cwd,
        } => (command, args, env, cwd),
        Launch::Remote { kind, url, headers } => {
            return remote_spec(server, *kind, url, headers, cwd, isolated, lookup);
        }
    };
    let expand =
        |s: &str| config::expand(s, lookup).map_err(|e| format!("server '{}': {e}", server.name));
    let per_cwd = server.share == Share::PerCwd;
    let mut spec_env: BTreeMap<String, String> = std::env::vars().collect();
    for (k, v) in env {
        spec_env.insert(k.clone(), expand(v)?);
    }
    let args = config_args
        .iter()
        .map(|a| {
            let a = expand(a)?;
            Ok(if per_cwd { a.replace("{cwd}", cwd) } else { a })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let dir = match dir {
        Some(d) => expand(&d.to_string_lossy())?,
        None if per_cwd && !cwd.is_empty() => cwd.to_string(),
        None => std::env::var("HOME").unwrap_or_else(|_| "/".into()),
    };
    let command = expand(command)?;
    let path = spec_env.get("PATH").map(std::ffi::OsString::from);
    if config::resolve_command(&command, Some(Path::new(&dir)), path.as_deref()).is_none() {
        return Err(format!(
            "server '{}': command '{command}' not found (in {dir} or on PATH)",
            server.name
        ));
    }
    Ok(Spec {
        command,
        args,
        cwd: dir,
        env: spec_env,
        global: !per_cwd,
        isolated: isolated || server.share == Share::PerClient,
        server: Some(server.name.clone()),
        secret_args: config_args.iter().any(|a| a.contains("${")),
    })
}

/// The upstream spec of a configured remote server: mcpshare itself as
/// the child (`mcpshare remote [--sse] URL`, see the remote module), the
/// headers, `${VAR}` references resolved by `lookup`, in its environment
/// (MCPSHARE_REMOTE_HEADERS) rather than its argv, which `ps` shows.
fn remote_spec(
    server: &Server,
    kind: RemoteKind,
    url: &str,
    headers: &BTreeMap<String, String>,
    cwd: &str,
    isolated: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Spec, String> {
    let name = &server.name;
    crate::remote::check_url(url).map_err(|e| format!("server '{name}': {e}"))?;
    let values = headers
        .iter()
        .map(|(k, v)| {
            let v = config::expand(v, lookup)
                .map_err(|e| format!("server '{name}': header {k}: {e}"))?;
            Ok((k.clone(), v))
        })
        .collect::<Result<BTreeMap<_, _>, String>>()?;
    // After a reinstall this names the new binary at the same path.
    let exe = crate::platform::exe(std::process::id())
        .or_else(|| std::env::current_exe().ok())
        .ok_or_else(|| {
            format!("server '{name}': cannot find mcpshare's own executable to relay to {url}")
        })?;
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    env.insert(
        crate::remote::HEADERS_VAR.to_string(),
        serde_json::to_string(&values).unwrap_or_default(),
    );
    let mut args = vec!["remote".to_string()];
    if kind == RemoteKind::Sse {
        args.push("--sse".into());
    }
    args.push(url.to_string());
    let per_cwd = server.share == Share::PerCwd;
    Ok(Spec {
        command: exe.display().to_string(),
        args,
        cwd: if per_cwd && !cwd.is_empty() {
            cwd.to_string()
        } else {
            std::env::var("HOME").unwrap_or_else(|_| "/".into())
        },
        env,
        global: !per_cwd,
        isolated: isolated || server.share == Share::PerClient,
        server: Some(name.clone()),
        secret_args: false,
    })
}

/// Does this command install its package on a first start (npx, uvx,
/// bunx, `docker run`)?
pub fn installs_on_first_start(spec: &Spec) -> bool {
    let base = Path::new(&spec.command)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    INSTALLING_LAUNCHERS.contains(&base)
        || (base == "docker" && spec.args.first().is_some_and(|a| a == "run"))
}

/// The settings of an upstream for `spec`: the daemon's, with a longer
/// start timeout for installing launchers, and a configured server's own
/// timeouts, idle time and limits.
pub fn tuning_for(base: &Tuning, spec: &Spec, server: Option<&Server>) -> Tuning {
    let mut t = base.clone();
    if installs_on_first_start(spec) {
        t.start_timeout = t.start_timeout.saturating_mul(LAUNCHER_TIMEOUT_FACTOR);
    }
    let Some(s) = server else {
        return t;
    };
    if let Some(secs) = s.start_timeout_secs {
        t.start_timeout = Duration::from_secs(secs);
    }
    if let Some(secs) = s.request_timeout_secs {
        t.request_timeout = Duration::from_secs(secs);
    }
    t.idle = Some(s.idle_secs.map_or(DEFAULT_IDLE, Duration::from_secs));
    t.limits = crate::supervisor::child::Limits {
        memory_mb: s.memory_mb,
        cpus: s.cpus,
    };
    t
}

fn view_of(s: &Server) -> ToolView {
    ToolView {
        filter: s.tools.clone(),
        aliases: s.aliases.clone(),
    }
}

impl Daemon {
    /// The upstream of configured server `ask.server` for this client.
    pub fn register_server(&self, ask: &Ask) -> Result<Arc<Upstream>, String> {
        if let Some(theirs) = &ask.config
            && theirs != &self.servers.path
        {
            return Err(format!(
                "this daemon reads the config {}, not {}; \
                 hint: give every client the same MCPSHARE_CONFIG, or stop the daemon",
                self.servers.path.display(),
                theirs.display()
            ));
        }
        let config = self.servers.config();
        let Some(server) = config.get(&ask.server) else {
            let mut e = format!(
                "no server '{}' in {}",
                ask.server,
                self.servers.path.display()
            );
            if let Some(bad) = self.servers.error() {
                e.push_str(&format!(" (its newest version is not used: {bad})"));
            }
            return Err(e + "; hint: mcpshare list, or mcpshare add NAME -- COMMAND");
        };
        if !server.enabled {
            return Err(format!(
                "server '{}' is disabled; hint: mcpshare enable {}",
                server.name, server.name
            ));
        }
        let lookup = |k: &str| ask.env.get(k).cloned().or_else(|| std::env::var(k).ok());
        let spec = spec_for(server, &ask.cwd, ask.isolated, &lookup).inspect_err(|e| {
            self.servers.set_failed(&server.name, Some(e.clone()));
        })?;
        self.servers.set_failed(&server.name, None);
        let up = self.register_tuned(spec, Some(server));
        up.set_view(view_of(server));
        Ok(up)
    }

    /// Start the eager servers of the config (restore on boot), each on
    /// its own thread; a failure is logged and shown in `status`.
    pub fn start_eager(self: &Arc<Self>, config: &Config) {
        for s in config.servers.iter().filter(|s| s.enabled && !s.lazy) {
            let ask = Ask {
                server: s.name.clone(),
                cwd: String::new(),
                env: BTreeMap::new(),
                config: None,
                isolated: false,
            };
            let d = self.clone();
            let name = s.name.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("eager-{name}"))
                .spawn(move || {
                    let started = d
                        .register_server(&ask)
                        .and_then(|up| up.ensure_running(true));
                    match started {
                        Ok(_) => log!("server {name}: started (eager)"),
                        Err(e) => {
                            log!("server {name}: cannot start: {e}");
                            d.servers.set_failed(&name, Some(e));
                        }
                    }
                });
            if let Err(e) = spawned {
                log!("cannot start a thread for server {}: {e}", s.name);
            }
        }
    }

    /// Read the config again and apply it: restart the servers whose launch
    /// fields changed (after their calls in flight, at most RELOAD_DRAIN),
    /// stop removed and disabled ones, apply filters and aliases at once,
    /// start new eager ones. A bad file changes nothing and is the error.
    pub fn reload(self: &Arc<Self>, why: &str) -> Result<Value, String> {
        let (old, new) = match self.servers.refresh(true) {
            Refresh::Unchanged => {
                if let Some(e) = self.servers.error() {
                    return Err(e);
                }
                return Ok(json!({"changed": false}));
            }
            Refresh::Invalid(e) => {
                log!("config reload ({why}): {e}; keeping the last good config");
                return Err(e);
            }
            Refresh::Changed { old, new } => (old, new),
        };
        Ok(self.apply(&old, &new, why))
    }

    /// Apply the change from `old` to `new` (see [`Daemon::reload`]).
    fn apply(self: &Arc<Self>, old: &Config, new: &Config, why: &str) -> Value {
        log!(
            "config reload ({why}): applying {}",
            self.servers.path.display()
        );
        let (mut restarted, mut stopped, mut updated) = (Vec::new(), Vec::new(), Vec::new());
        for o in &old.servers {
            match new.get(&o.name) {
                None => {
                    self.catalog.forget(&o.name);
                    self.retire_server(&o.name, "it was removed from the config");
                    stopped.push(o.name.clone());
                }
                Some(n) if !n.enabled && o.enabled => {
                    self.retire_server(&o.name, "it was disabled");
                    stopped.push(o.name.clone());
                }
                Some(n) if o.restart_needed(n) => {
                    self.retire_server(&o.name, "its launch fields changed");
                    restarted.push(o.name.clone());
                }
                Some(n) => {
                    if view_of(o) != view_of(n) {
                        for up in self.upstreams_of(&n.name) {
                            up.set_view(view_of(n));
                        }
                        updated.push(n.name.clone());
                    }
                }
            }
        }
        // New eager servers, ones just enabled or made eager, and eager ones
        // that restart.
        let eager: Vec<Server> = new
            .servers
            .iter()
            .filter(|n| n.enabled && !n.lazy)
            .filter(|n| {
                old.get(&n.name).is_none_or(|o| {
                    !o.enabled
                        || o.lazy
                        || o.restart_needed(n)
                        || self.upstreams_of(&n.name).is_empty()
                })
            })
            .cloned()
            .collect();
        self.start_eager(&Config { servers: eager });
        self.names.keep(new);
        self.refresh_hubs();
        log!(
            "config reload ({why}): restarted {restarted:?}, stopped {stopped:?}, filters of {updated:?}"
        );
        json!({
            "changed": true,
            "restarted": restarted,
            "stopped": stopped,
            "updated": updated,
        })
    }

    /// Reload on SIGHUP (a line on `asked`) or when the file changes, until
    /// the daemon stops.
    pub fn watch_config(self: &Arc<Self>, asked: &std::sync::mpsc::Receiver<String>) {
        while !self.is_stopping() {
            let why = match asked.recv_timeout(WATCH_EVERY) {
                Ok(why) => why,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    match self.servers.refresh(false) {
                        Refresh::Unchanged => continue,
                        Refresh::Invalid(e) => {
                            log!("config changed: {e}; keeping the last good config");
                            continue;
                        }
                        Refresh::Changed { old, new } => {
                            self.apply(&old, &new, "the file changed");
                            continue;
                        }
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            };
            if let Err(e) = self.reload(&why) {
                log!("config reload ({why}) failed: {e}");
            }
        }
    }

    /// Every upstream of configured server `name`.
    pub fn upstreams_of(&self, name: &str) -> Vec<Arc<Upstream>> {
        lock(&self.upstreams)
            .values()
            .filter(|u| u.spec.server.as_deref() == Some(name))
            .cloned()
            .collect()
    }

    /// Take server `name`'s upstreams out of the daemon at once (so new
    /// clients get a fresh one), then, on a thread of its own, let their
    /// calls in flight finish (bounded), end their sessions (bridges attach
    /// again, to the new config) and stop them.
    fn retire_server(self: &Arc<Self>, name: &str, why: &str) {
        let ups: Vec<Arc<Upstream>> = {
            let mut all = lock(&self.upstreams);
            let ids: Vec<String> = all
                .iter()
                .filter(|(_, u)| u.spec.server.as_deref() == Some(name))
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| all.remove(id)).collect()
        };
        for up in ups {
            let d = self.clone();
            let why = format!("server {name}: {why}");
            let spawned = std::thread::Builder::new()
                .name(format!("retire-{}", up.id))
                .spawn(move || d.drain_and_stop(&up, &why));
            if let Err(e) = spawned {
                log!("cannot start a thread to retire {name}: {e}");
            }
        }
    }

    fn drain_and_stop(&self, up: &Arc<Upstream>, why: &str) {
        let deadline = Instant::now() + RELOAD_DRAIN;
        let (_never, tick) = std::sync::mpsc::channel::<()>();
        if up.inflight() > 0 {
            log!("{why}: waiting for {} call(s) in flight", up.inflight());
        }
        while up.inflight() > 0 && Instant::now() < deadline {
            let _ = tick.recv_timeout(Duration::from_millis(20));
        }
        up.retire();
        let sessions: Vec<String> = lock(&self.sessions)
            .values()
            .filter(|s| Arc::ptr_eq(&s.upstream, up))
            .map(|s| s.id.clone())
            .collect();
        for id in sessions {
            self.end_session(&id, why);
        }
        log!("{why}: stopping upstream {}", up.id);
        up.stop(why);
    }

    /// Configured servers with what the daemon knows of each, for `status`
    /// and `list`. Env values are never shown.
    pub fn servers_status(&self) -> Value {
        let config = self.servers.config();
        let installing = config::source::installing(self.home.dir());
        let mut servers: Vec<Value> = config
            .servers
            .iter()
            .map(|s| {
                let ups: Vec<_> = self
                    .upstreams_of(&s.name)
                    .iter()
                    .map(|u| u.status())
                    .collect();
                let failed = self.servers.failed(&s.name);
                let state = if installing.contains_key(&s.name) {
                    "installing"
                } else if !s.enabled {
                    "disabled"
                } else if let Some(st) =
                    ["running", "starting", "restarting", "crashed", "stopping"]
                        .into_iter()
                        .find(|st| ups.iter().any(|u| u.state == *st))
                {
                    st
                } else if failed.is_some() {
                    "failed"
                } else {
                    "stopped"
                };
                let restart_in_ms = ups.iter().filter_map(|u| u.restart_in_ms).min();
                let last_error = failed.or_else(|| ups.iter().find_map(|u| u.last_error.clone()));
                json!({
                    "name": s.name,
                    "state": state,
                    "enabled": s.enabled,
                    "lazy": s.lazy,
                    "share": s.share.as_str(),
                    "upstreams": ups.iter().map(|u| &u.id).collect::<Vec<_>>(),
                    "pids": ups.iter().filter_map(|u| u.pid).collect::<Vec<_>>(),
                    "sessions": ups.iter().map(|u| u.sessions).sum::<usize>(),
                    "restart_in_ms": restart_in_ms,
                    "last_error": last_error,
                })
            })
            .collect();
        // `add --source` writes the entry only once its install succeeded.
        servers.extend(
            installing
                .iter()
                .filter(|(name, _)| config.get(name).is_none())
                .map(|(name, pid)| {
                    json!({"name": name, "state": "installing", "installer_pid": pid,
                    "enabled": true, "upstreams": [], "pids": [], "sessions": 0})
                }),
        );
        json!({
            "path": self.servers.path.display().to_string(),
            "error": self.servers.error(),
            "servers": servers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(json: &str) -> Server {
        let text = format!(r#"{{"mcpServers": {{"s": {json}}}}}"#);
        config::parse(Path::new("/c.json"), &text)
            .unwrap()
            .servers
            .remove(0)
    }

    #[test]
    fn a_configured_spec_expands_references_and_follows_its_share_policy() {
        let s = server(
            r#"{"command": "sh", "args": ["-c", "{cwd}", "${TOKEN}"],
                "env": {"K": "${TOKEN:-none}"}, "mcpshare": {"share": "per-cwd"}}"#,
        );
        let lookup = |k: &str| (k == "TOKEN").then(|| "t0k".to_string());
        let spec = spec_for(&s, "/proj", false, &lookup).unwrap();
        assert_eq!(spec.args, ["-c", "/proj", "t0k"]);
        assert_eq!(spec.env["K"], "t0k");
        assert_eq!(spec.cwd, "/proj");
        assert!(!spec.global && !spec.isolated);
        assert_eq!(spec.server.as_deref(), Some("s"));

        let shared = server(r#"{"command": "sh", "args": ["{cwd}"]}"#);
        let spec = spec_for(&shared, "/proj", false, &|_| None).unwrap();
        assert_eq!(spec.args, ["{cwd}"], "only per-cwd servers get {{cwd}}");
        assert!(spec.global);

        let missing = server(r#"{"command": "sh", "env": {"K": "${NOPE}"}}"#);
        let e = spec_for(&missing, "/", false, &|_| None).unwrap_err();
        assert!(e.contains("NOPE") && e.contains("'s'"), "{e}");

        let absent = server(r#"{"command": "surely-not-a-command-here"}"#);
        let e = spec_for(&absent, "/", false, &|_| None).unwrap_err();
        assert!(e.contains("not found"), "{e}");
    }

    #[test]
    fn a_remote_spec_runs_mcpshare_with_the_headers_in_its_environment() {
        let s = server(
            r#"{"type": "sse", "url": "http://127.0.0.1:9/sse",
                "headers": {"Authorization": "Bearer ${TOKEN}"}}"#,
        );
        let lookup = |k: &str| (k == "TOKEN").then(|| "t0k".to_string());
        let spec = spec_for(&s, "/proj", false, &lookup).unwrap();
        assert_eq!(spec.args, ["remote", "--sse", "http://127.0.0.1:9/sse"]);
        assert!(!spec.args.iter().any(|a| a.contains("t0k")));
        let headers: Value = serde_json::from_str(&spec.env[crate::remote::HEADERS_VAR]).unwrap();
        assert_eq!(headers, json!({"Authorization": "Bearer t0k"}));
        assert_eq!(
            spec.command,
            std::env::current_exe().unwrap().display().to_string()
        );
        assert!(spec.global);

        let e = spec_for(&s, "/", false, &|_| None).unwrap_err();
        assert!(
            e.contains("TOKEN") && e.contains("header Authorization"),
            "{e}"
        );
        let tls = server(r#"{"url": "https://example.com/mcp"}"#);
        let e = spec_for(&tls, "/", false, &|_| None).unwrap_err();
        assert!(
            e.contains("https://example.com/mcp") && e.contains("mcp-remote"),
            "{e}"
        );
    }

    #[test]
    fn installing_launchers_get_a_longer_start() {
        let mut spec = spec_for(&server(r#"{"command": "sh"}"#), "/", false, &|_| None).unwrap();
        assert!(!installs_on_first_start(&spec));
        spec.command = "/usr/bin/npx".into();
        assert!(installs_on_first_start(&spec));
        spec.command = "docker".into();
        spec.args = vec!["run".into(), "-i".into(), "img".into()];
        assert!(installs_on_first_start(&spec));
    }
}
