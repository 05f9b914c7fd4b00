//! `mcpshare doctor processes`: every registry record with what the OS says
//! of its pid now (alive, same start time and executable, parent, group),
//! which records are stale and the exact command that ends a leftover
//! process. It reads records and probes pids; it never signals a process,
//! never deletes a record and never scans process names.

use super::{opt, pid_list, this_exe};
use crate::error::Result;
use crate::platform;
use crate::state::home::Home;
use crate::state::registry::{self, Record};
use serde_json::Value;
use std::path::Path;

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

/// Every record, inspected; corrupt ones reported on stderr and skipped.
pub fn seen(home: &Home) -> (Vec<Seen>, registry::Corrupt) {
    let (good, bad) = registry::list(&home.processes_dir());
    (good.into_iter().map(|(p, r)| inspect(&p, r)).collect(), bad)
}

/// Say on stderr which records do not parse; they are skipped.
pub fn warn_corrupt(bad: &registry::Corrupt) {
    for (path, why) in bad {
        eprintln!(
            "mcpshare: warning: skipping corrupt record {}: {why}",
            path.display()
        );
    }
}

/// Print every record with what the OS says of its pid now: one line
/// each, or a JSON array.
pub fn processes(home: &Home, as_json: bool) -> Result<i32> {
    let (all, bad) = seen(home);
    warn_corrupt(&bad);
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
