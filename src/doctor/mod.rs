//! `mcpshare doctor`: one line per check, with a level and the exact
//! command that fixes each problem; and `doctor processes`, the registry
//! records with what the OS says of each pid now. It reads records and
//! probes; it never signals a process. Its one look at other processes'
//! command lines is `foreign_orphans`, through `orphans`.

use crate::error::{Error, Result};
use crate::net::client;
use crate::platform;
use crate::state::home::Home;
use crate::state::manifest::Manifest;
use crate::state::registry::{self, Record};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// What the OS says now of a recorded process.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Seen {
    pub record: Record,
    pub path: String,
    /// Alive and, where both are known, started at the recorded time.
    pub alive: bool,
    pub start_time_match: Option<bool>,
    pub executable_match: Option<bool>,
    pub current_parent_pid: Option<u32>,
    pub parent_alive: Option<bool>,
    pub current_process_group_id: Option<u32>,
    pub stale_client: bool,
    /// An upstream, or a member of its process group, alive while the
    /// daemon that started it is gone.
    pub orphan: bool,
    pub child_pids: Vec<u32>,
    /// Live members of an upstream's process group (the upstream itself
    /// included) whose daemon is gone; confirmed by group, session and
    /// start time.
    pub survivors: Vec<u32>,
}

impl Seen {
    /// A record of nothing: its process is gone, and so is every member of
    /// its process group. Only such a record is ever offered for deletion.
    pub fn stale(&self) -> bool {
        !self.alive && self.survivors.is_empty()
    }
}

/// The stale-client rule: a live bridge whose recorded parent (> 1) is no
/// longer its parent.
pub fn is_stale_client(
    role: &str,
    alive: bool,
    parent_at_start: Option<u32>,
    current_parent: Option<u32>,
) -> bool {
    role == "bridge"
        && alive
        && parent_at_start.is_some_and(|p| p > 1)
        && current_parent.is_some()
        && current_parent != parent_at_start
}

pub fn inspect(path: &Path, r: Record) -> Seen {
    let live = platform::pid_alive(r.pid);
    let now_start = if live {
        platform::start_time(r.pid)
    } else {
        None
    };
    let start_time_match = match (r.start_time, now_start) {
        (0, _) | (_, None) => None,
        (want, Some(now)) => Some(want == now),
    };
    let alive = live && start_time_match != Some(false);
    let executable_match = match (alive, r.executable.is_empty(), platform::exe(r.pid)) {
        (true, false, Some(exe)) => Some(exe.display().to_string() == r.executable),
        _ => None,
    };
    let (current_parent_pid, current_process_group_id) = platform::parent_and_group(r.pid)
        .filter(|_| alive)
        .map_or((None, None), |(p, g)| (Some(p), Some(g)));
    let parent_alive = r.parent_pid_at_start.map(platform::pid_alive);
    let stale_client = is_stale_client(&r.role, alive, r.parent_pid_at_start, current_parent_pid);
    let survivors = r.survivors();
    let orphan = r.daemon_gone() && (alive || !survivors.is_empty());
    let child_pids = if alive {
        children_of(r.pid)
    } else {
        Vec::new()
    };
    Seen {
        path: path.display().to_string(),
        record: r,
        alive,
        start_time_match,
        executable_match,
        current_parent_pid,
        parent_alive,
        current_process_group_id,
        stale_client,
        orphan,
        child_pids,
        survivors,
    }
}

/// Children of `pid`, from each process's parent field in /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut kids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|c| platform::parent_and_group(*c).is_some_and(|(p, _)| p == pid))
        .collect();
    kids.sort_unstable();
    kids
}

fn tri(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

fn yn(v: bool) -> &'static str {
    if v { "yes" } else { "no" }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

/// A value for a key=value line: quoted as JSON when it has spaces or quotes.
fn field(v: &str) -> String {
    if v.is_empty() {
        "-".into()
    } else if v.chars().any(|c| c.is_whitespace() || c == '"' || c == '=') {
        Value::String(v.into()).to_string()
    } else {
        v.into()
    }
}

pub fn render_line(s: &Seen, exe: &str) -> String {
    let r = &s.record;
    let mut line = format!(
        "pid={} alive={} start_time_match={} executable_match={} role={} transport={} upstream={} session={} \
         cwd={} started_unix_millis={} parent_pid_at_start={} current_parent_pid={} parent_alive={} \
         process_group_id={} current_process_group_id={} stale_client={} orphan={} record={}",
        r.pid,
        yn(s.alive),
        tri(s.start_time_match),
        tri(s.executable_match),
        field(&r.role),
        field(&r.transport),
        field(r.upstream.as_deref().unwrap_or("")),
        field(r.session.as_deref().unwrap_or("")),
        field(&r.cwd),
        r.started_unix_millis,
        opt(r.parent_pid_at_start),
        opt(s.current_parent_pid),
        tri(s.parent_alive),
        opt(r.process_group_id),
        opt(s.current_process_group_id),
        yn(s.stale_client),
        yn(s.orphan),
        field(&s.path),
    );
    if !s.child_pids.is_empty() {
        line.push_str(&format!("\n  child_pids={}", pid_list(&s.child_pids, ",")));
    }
    if !s.survivors.is_empty() {
        line.push_str(&format!("\n  survivors={}", pid_list(&s.survivors, ",")));
    }
    if s.stale() {
        line.push_str(&format!(
            "\n  stale_record_cleanup={exe} doctor processes --cleanup-stale-records"
        ));
    }
    if s.stale_client {
        line.push_str(&format!("\n  exact_terminate=kill -TERM {}", r.pid));
    }
    if s.orphan {
        let group = r.process_group_id.unwrap_or(r.pid);
        line.push_str(&format!("\n  exact_terminate=kill -TERM -{group}"));
    }
    line
}

fn pid_list(pids: &[u32], sep: &str) -> String {
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

fn this_exe() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "mcpshare".into())
}

/// Every record, inspected; corrupt ones reported on stderr and skipped.
pub fn seen(home: &Home) -> (Vec<Seen>, registry::Corrupt) {
    let (good, bad) = registry::list(&home.processes_dir());
    (good.into_iter().map(|(p, r)| inspect(&p, r)).collect(), bad)
}

pub fn processes(home: &Home, as_json: bool, cleanup: bool) -> Result<i32> {
    let (all, bad) = seen(home);
    for (path, why) in &bad {
        eprintln!(
            "mcpshare: warning: skipping corrupt record {}: {why}",
            path.display()
        );
    }
    if cleanup {
        for s in all.iter().filter(|s| s.stale()) {
            match std::fs::remove_file(&s.path) {
                Ok(()) => eprintln!(
                    "mcpshare: removed stale record {} (pid {} is gone)",
                    s.path, s.record.pid
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::Path(PathBuf::from(&s.path), e)),
            }
        }
        return Ok(0);
    }
    if as_json {
        println!(
            "{}",
            serde_json::to_string(&all).unwrap_or_else(|_| "[]".into())
        );
        return Ok(0);
    }
    let exe = this_exe();
    if all.is_empty() && bad.is_empty() {
        println!(
            "no processes on record in {}",
            home.processes_dir().display()
        );
    }
    for s in &all {
        println!("{}", render_line(s, &exe));
    }
    Ok(0)
}

/// Every check `mcpshare doctor` runs; each has an entry in mcpshare(1).
pub const CHECKS: &[&str] = &[
    "home",
    "filesystem",
    "daemon_lock",
    "manifest",
    "daemon_health",
    "version",
    "stale_records",
    "corrupt_records",
    "stale_clients",
    "orphaned_upstreams",
    "foreign_orphans",
    "crashed_upstreams",
    "near_misses",
    "failing_upstreams",
];

/// Every field of a `doctor processes` line; each is in mcpshare(1).
pub const PROCESS_FIELDS: &[&str] = &[
    "pid",
    "alive",
    "start_time_match",
    "executable_match",
    "role",
    "transport",
    "upstream",
    "session",
    "cwd",
    "started_unix_millis",
    "parent_pid_at_start",
    "current_parent_pid",
    "parent_alive",
    "process_group_id",
    "current_process_group_id",
    "stale_client",
    "orphan",
    "record",
    "child_pids",
    "survivors",
    "stale_record_cleanup",
    "exact_terminate",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub check: &'static str,
    pub level: Level,
    pub message: String,
    pub fix: Option<String>,
}

fn check(
    check: &'static str,
    level: Level,
    message: impl Into<String>,
    fix: Option<String>,
) -> Check {
    Check {
        check,
        level,
        message: message.into(),
        fix,
    }
}

/// One finding per item under check `name`, each with its fix, or one Ok
/// line saying `none` when there are no items.
fn findings<T>(
    out: &mut Vec<Check>,
    name: &'static str,
    none: &str,
    items: impl Iterator<Item = T>,
    finding: impl Fn(T) -> (Level, String, String),
) {
    let before = out.len();
    for item in items {
        let (level, text, fix) = finding(item);
        out.push(check(name, level, text, Some(fix)));
    }
    if out.len() == before {
        out.push(check(name, Level::Ok, none, None));
    }
}

/// The `home` check, read only; the home when the other checks can look
/// into it.
fn home_check() -> Result<(Check, Option<Home>)> {
    use crate::state::home::Found;
    let c = |level, text: String, fix: Option<String>| check("home", level, text, fix);
    Ok(match Home::inspect()? {
        Found::Relative { given, absolute } => (
            c(
                Level::Error,
                format!(
                    "MCPSHARE_HOME={} is a relative path: each client's working directory \
                     would get a daemon of its own, and mcpshare refuses it",
                    given.display()
                ),
                Some(format!(
                    "export MCPSHARE_HOME={} (in a client's config, its \"env\" block)",
                    absolute.display()
                )),
            ),
            None,
        ),
        Found::Missing(dir) => (
            c(
                Level::Info,
                format!(
                    "{} does not exist yet; the first client creates it (mode 0700)",
                    dir.display()
                ),
                None,
            ),
            None,
        ),
        Found::NotDirectory(dir) => (
            c(
                Level::Error,
                format!("{} is not a directory", dir.display()),
                Some(format!(
                    "mv {} {}.bak (or point MCPSHARE_HOME at a directory)",
                    dir.display(),
                    dir.display()
                )),
            ),
            None,
        ),
        Found::Foreign { dir, uid, ours } => (
            c(
                Level::Error,
                format!(
                    "{} is owned by uid {uid}, not by this user (uid {ours})",
                    dir.display()
                ),
                Some("export MCPSHARE_HOME=<a directory of your own>".into()),
            ),
            None,
        ),
        Found::Loose { home, mode } => (
            c(
                Level::Error,
                format!(
                    "{} has mode {mode:04o}: others may read the daemon's bearer token",
                    home.dir().display()
                ),
                Some(format!("chmod 700 {}", home.dir().display())),
            ),
            Some(home),
        ),
        Found::Private(home) => (
            c(
                Level::Ok,
                format!("{} is private to this user (0700)", home.dir().display()),
                None,
            ),
            Some(home),
        ),
    })
}

/// Every check of `mcpshare doctor` after `home`, in order.
pub fn checks(home: &Home) -> Vec<Check> {
    use Level::*;
    let exe = this_exe();
    let mut out = Vec::new();
    match platform::on_network_fs(home.dir()) {
        Some(true) => out.push(check(
            "filesystem",
            Warning,
            format!(
                "{} is on a network filesystem, where file locks may not hold",
                home.dir().display()
            ),
            Some("export MCPSHARE_HOME=<a directory on a local disk>".into()),
        )),
        Some(false) => out.push(check(
            "filesystem",
            Ok,
            "home is on a local filesystem",
            None,
        )),
        None => out.push(check(
            "filesystem",
            Info,
            "cannot tell the filesystem type here",
            None,
        )),
    }

    let lock_held = crate::state::lock::is_held(&home.daemon_lock()).unwrap_or(false);
    let manifest_bytes = std::fs::read(home.manifest()).ok();
    let manifest = manifest_bytes
        .as_deref()
        .and_then(|b| Manifest::parse(b).ok());
    let holder = manifest
        .as_ref()
        .filter(|m| platform::same_process(&m.process()))
        .map(|m| m.pid);
    out.push(match (lock_held, holder) {
        (false, _) => check("daemon_lock", Ok, "free: no daemon runs", None),
        (true, Some(pid)) => check("daemon_lock", Ok, format!("held by daemon pid {pid}"), None),
        (true, None) => check(
            "daemon_lock",
            Info,
            "held, by a daemon that has not published its manifest yet",
            None,
        ),
    });
    out.push(match (&manifest_bytes, &manifest) {
        (None, _) => check("manifest", Ok, "none (no daemon has published one)", None),
        (Some(_), None) => check(
            "manifest",
            if lock_held { Warning } else { Info },
            format!(
                "{} is corrupt or of another schema; it is ignored and replaced at the next start",
                home.manifest().display()
            ),
            None,
        ),
        (Some(_), Some(m)) if holder.is_none() => check(
            "manifest",
            Info,
            format!(
                "stale: names pid {} which is gone; it is ignored and replaced at the next start",
                m.pid
            ),
            None,
        ),
        (Some(_), Some(m)) => check(
            "manifest",
            Ok,
            format!("valid: daemon pid {} on port {}", m.pid, m.port),
            None,
        ),
    });

    let mut daemon_status = None;
    if let Some(m) = manifest.as_ref().filter(|_| lock_held && holder.is_some()) {
        match client::health(m.port, client::HEALTH_TIMEOUT) {
            std::result::Result::Ok(h) => {
                let age_s = crate::log::unix_millis().saturating_sub(m.heartbeat_at) / 1000;
                let stale_beat = age_s > 3 * crate::state::manifest::HEARTBEAT_EVERY.as_secs();
                out.push(if stale_beat {
                    check(
                        "daemon_health",
                        Warning,
                        format!(
                            "pid {} answers, but its last heartbeat is {age_s} s old",
                            m.pid
                        ),
                        None,
                    )
                } else {
                    check(
                        "daemon_health",
                        Ok,
                        format!("pid {} answers; heartbeat {age_s} s ago", m.pid),
                        None,
                    )
                });
                out.push(version_check(&h));
                daemon_status = crate::net::client::Client::new(m)
                    .call(
                        "GET",
                        "/api/status",
                        None,
                        std::time::Duration::from_secs(5),
                    )
                    .ok()
                    .filter(|(code, _)| *code == 200)
                    .map(|(_, v)| v);
            }
            Err(why) => out.push(check(
                "daemon_health",
                Error,
                format!("pid {} holds the lock but is hung: {why}", m.pid),
                Some(format!("{exe} stop --force")),
            )),
        }
    }

    let (all, bad) = seen(home);
    let dead: Vec<&Seen> = all.iter().filter(|s| s.stale()).collect();
    out.push(if dead.is_empty() {
        check("stale_records", Ok, "no records of dead processes", None)
    } else {
        let pids: Vec<String> = dead.iter().map(|s| s.record.pid.to_string()).collect();
        check(
            "stale_records",
            Warning,
            format!(
                "{} record(s) of dead processes: pid {}",
                dead.len(),
                pids.join(", ")
            ),
            Some(format!("{exe} doctor processes --cleanup-stale-records")),
        )
    });
    for (path, why) in &bad {
        out.push(check(
            "corrupt_records",
            Warning,
            format!("{} does not parse ({why})", path.display()),
            Some(format!("rm {}", path.display())),
        ));
    }
    let stale = all.iter().filter(|s| s.stale_client);
    findings(
        &mut out,
        "stale_clients",
        "no bridge outlived the client that started it",
        stale,
        |s| {
            let text = format!(
                "bridge pid {} outlived its client (pid {} at start)",
                s.record.pid,
                opt(s.record.parent_pid_at_start)
            );
            (Warning, text, format!("kill -TERM {}", s.record.pid))
        },
    );
    let orphans = all.iter().filter(|s| s.orphan);
    findings(
        &mut out,
        "orphaned_upstreams",
        "no upstream outlived its daemon",
        orphans,
        |s| {
            let group = s.record.process_group_id.unwrap_or(s.record.pid);
            let running = if s.survivors.is_empty() {
                format!("runs (pid {})", s.record.pid)
            } else {
                format!(
                    "has pid {} still running in its process group {group}",
                    pid_list(&s.survivors, ", ")
                )
            };
            let text = format!(
                "upstream {} (pid {} at start) {running}, but its daemon pid {} is gone; \
                 the next daemon to start stops it too",
                s.record.upstream.as_deref().unwrap_or("?"),
                s.record.pid,
                opt(s.record.parent_pid_at_start)
            );
            (Error, text, format!("kill -TERM -{group}"))
        },
    );
    out.push(foreign_orphans(home, &exe));
    // Without a daemon's status there is nothing to say about crashes.
    if let Some(st) = &daemon_status {
        let upstreams = st["upstreams"].as_array().cloned().unwrap_or_default();
        let failing = upstreams.iter().filter(|u| {
            u["state"] != json!("crashed")
                && u["state"] != json!("running")
                && u["last_error"].is_string()
        });
        findings(
            &mut out,
            "failing_upstreams",
            "no upstream failed its last start",
            failing,
            |u| {
                let id = u["id"].as_str().unwrap_or("?");
                let text = format!(
                    "upstream {id} failed to start: {}",
                    u["last_error"].as_str().unwrap_or("?")
                );
                (Error, text, format!("{exe} logs {id}"))
            },
        );
        let crashed = upstreams
            .into_iter()
            .filter(|u| u["state"] == json!("crashed"));
        findings(
            &mut out,
            "crashed_upstreams",
            "no upstream is marked crashed",
            crashed,
            |u| {
                let id = u["id"].as_str().unwrap_or("?");
                let text = format!(
                    "upstream {id} crashed repeatedly and is not restarted (see '{exe} logs {id}')"
                );
                (Error, text, format!("{exe} restart {id}"))
            },
        );
        let near = st["near_misses"].as_array().cloned().unwrap_or_default();
        findings(
            &mut out,
            "near_misses",
            "no two upstreams run the same command without sharing",
            near.into_iter(),
            |n| {
                let list = |k: &str| crate::mcp::jsonrpc::strings(&n[k]);
                let text = format!(
                    "upstreams {} run the same command and arguments but do not share \
                     (they differ in {}): two processes of one server, which may both write its state",
                    list("upstreams").join(" and "),
                    list("differ").join(", ")
                );
                (Warning, text, n["fix"].as_str().unwrap_or("?").to_string())
            },
        );
    }
    out
}

/// MCP servers of this user that outlived their client (not mcpshare's
/// own: those are `orphaned_upstreams`), with the commands that list and
/// stop them.
fn foreign_orphans(home: &Home, exe: &str) -> Check {
    let scope = crate::orphans::Scope {
        mcpshare_home: Some(home.clone()),
        ..crate::orphans::Scope::from_env()
    };
    let found = match crate::orphans::scan(&scope) {
        std::result::Result::Ok(found) => found,
        Err(e) => {
            return check(
                "foreign_orphans",
                Level::Info,
                format!("cannot look for orphaned MCP servers here: {e}"),
                None,
            );
        }
    };
    if found.is_empty() {
        return check(
            "foreign_orphans",
            Level::Ok,
            "no MCP server of this user outlived its client",
            None,
        );
    }
    let pids: Vec<String> = found.iter().map(|o| o.pid.to_string()).collect();
    let bytes: u64 = found.iter().map(|o| o.rss_bytes).sum();
    check(
        "foreign_orphans",
        Level::Warning,
        format!(
            "{} MCP server(s) outlived their client and use {}: pid {} (list them with '{exe} orphans')",
            found.len(),
            crate::orphans::mib(bytes),
            pids.join(", ")
        ),
        Some(format!("{exe} orphans --stop {}", pids.join(" "))),
    )
}

fn version_check(h: &client::Health) -> Check {
    let ours = crate::state::version::version();
    if h.protocol != crate::state::manifest::PROTOCOL {
        return check(
            "version",
            Level::Error,
            format!(
                "daemon speaks control protocol {}, this mcpshare {}: clients of this binary cannot attach",
                h.protocol,
                crate::state::manifest::PROTOCOL
            ),
            Some(format!("{} stop", this_exe())),
        );
    }
    match crate::state::version::semver_cmp(&h.version, &ours) {
        Some(std::cmp::Ordering::Equal) => check(
            "version",
            Level::Ok,
            format!("daemon and this binary are both {ours}"),
            None,
        ),
        Some(std::cmp::Ordering::Less) => check(
            "version",
            Level::Info,
            format!(
                "daemon is {} and this binary {ours}: the next client of this binary takes over",
                h.version
            ),
            None,
        ),
        _ => check(
            "version",
            Level::Info,
            format!("daemon is {}, this binary {ours}", h.version),
            None,
        ),
    }
}

pub fn summary(as_json: bool) -> Result<i32> {
    let (home, dir) = home_check()?;
    let mut all = vec![home];
    all.extend(dir.as_ref().map(checks).unwrap_or_default());
    let worst = all.iter().map(|c| c.level).max().unwrap_or(Level::Ok);
    if as_json {
        println!(
            "{}",
            serde_json::to_string(&all).unwrap_or_else(|_| "[]".into())
        );
    } else {
        for c in &all {
            let level = match c.level {
                Level::Ok => "ok",
                Level::Info => "info",
                Level::Warning => "warning",
                Level::Error => "error",
            };
            println!("{level:<8}{}: {}", c.check, c.message);
            if let Some(fix) = &c.fix {
                println!("        fix: {fix}");
            }
        }
    }
    Ok(i32::from(worst == Level::Error))
}

/// `mcpshare stop --force`: signal the daemon's recorded pid, but only
/// after confirming it is the process that published the manifest (start
/// time and executable), then wait for its lock to be free.
pub fn stop_force(home: &Home) -> Result<i32> {
    use std::time::{Duration, Instant};
    if !crate::state::lock::is_held(&home.daemon_lock())
        .map_err(|e| Error::Path(home.daemon_lock(), e))?
    {
        println!("no daemon running for {}", home.dir().display());
        return Ok(0);
    }
    let m = Manifest::read(&home.manifest()).ok_or_else(|| {
        Error::Daemon(
            "the daemon lock is held but no valid manifest names its holder; nothing is signalled"
                .into(),
        )
    })?;
    if !platform::same_process(&m.process()) {
        return Err(Error::Daemon(format!(
            "pid {} in the manifest is gone or was reused (start time differs); nothing is signalled",
            m.pid
        )));
    }
    let exe = platform::exe(m.pid).map(|p| p.display().to_string());
    if exe.as_deref() != Some(m.exe.as_str()) {
        return Err(Error::Daemon(format!(
            "pid {} runs {} but the manifest names {}; nothing is signalled",
            m.pid,
            exe.unwrap_or_else(|| "an unknown executable".into()),
            m.exe
        )));
    }
    let lock_path = home.daemon_lock();
    platform::signal(m.pid, platform::Signal::Term)
        .map_err(|e| Error::io(format!("cannot signal pid {}", m.pid), e))?;
    let freed = crate::state::lock::wait_free(&lock_path, Instant::now() + FORCE_GRACE)
        .map_err(|e| Error::Path(lock_path.clone(), e))?;
    if !freed {
        // Same process still (checked again): a stopped or wedged daemon ignores SIGTERM.
        if platform::same_process(&m.process()) {
            let _ = platform::signal(m.pid, platform::Signal::Kill);
        }
        if !crate::state::lock::wait_free(&lock_path, Instant::now() + Duration::from_secs(10))
            .map_err(|e| Error::Path(lock_path.clone(), e))?
        {
            return Err(Error::Daemon(format!(
                "daemon pid {} still holds its lock after SIGKILL",
                m.pid
            )));
        }
    }
    // A killed daemon leaves its manifest; remove it only if it is still that one.
    if Manifest::read(&home.manifest()).is_some_and(|now| now.pid == m.pid && now.token == m.token)
    {
        let _ = std::fs::remove_file(home.manifest());
    }
    println!(
        "stopped daemon pid {}{}",
        m.pid,
        if freed {
            ""
        } else {
            " (SIGKILL after SIGTERM was ignored)"
        }
    );
    Ok(0)
}

/// How long `stop --force` waits after SIGTERM before SIGKILL.
pub const FORCE_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_client_rule() {
        assert!(is_stale_client("bridge", true, Some(50), Some(1)));
        assert!(!is_stale_client("bridge", true, Some(50), Some(50)));
        assert!(
            !is_stale_client("daemon", true, Some(50), Some(1)),
            "only bridges are clients"
        );
        assert!(
            !is_stale_client("bridge", false, Some(50), Some(1)),
            "a dead process is a stale record instead"
        );
        assert!(!is_stale_client("bridge", true, Some(1), Some(1)));
    }
}
