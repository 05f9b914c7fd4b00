//! `mcpshare doctor`: one line per check (home, filesystem, lock, manifest,
//! daemon health and version, records, upstreams), with a level and the
//! exact command that fixes each problem. It reads files and asks the
//! daemon; it never signals a process and never writes or deletes a file.

use super::processes::{Seen, seen};
use super::{opt, pid_list, this_exe};
use crate::error::Result;
use crate::net::client;
use crate::platform;
use crate::state::home::Home;
use crate::state::manifest::Manifest;
use serde_json::json;

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
    "config",
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

pub(super) fn check(
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
    out.push(super::foreign_orphans::check(home, &exe));
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
    out.push(config_check());
    out
}

/// mcpshare's config: valid (how many servers), absent, or the error with
/// its line and column (the daemon then runs the last good one).
fn config_check() -> Check {
    let path = match crate::config::path() {
        Ok(p) => p,
        Err(e) => return check("config", Level::Info, e.to_string(), None),
    };
    if !path.exists() {
        let message = format!("no config at {} (no configured servers)", path.display());
        return check("config", Level::Ok, message, None);
    }
    match crate::config::load(&path) {
        Ok(c) => {
            let enabled = c.servers.iter().filter(|s| s.enabled).count();
            let message = format!(
                "{}: {} server(s), {enabled} enabled",
                path.display(),
                c.servers.len()
            );
            check("config", Level::Ok, message, None)
        }
        Err(e) => check(
            "config",
            Level::Error,
            format!("{e} (a running daemon keeps its last good config)"),
            Some(format!(
                "correct {} (mcpshare edit), then: mcpshare reload",
                path.display()
            )),
        ),
    }
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
