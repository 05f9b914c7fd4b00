//! The process registry: every process mcpshare runs or serves from — the
//! daemon, each bridge, each upstream it spawned — has a record
//! `<home>/processes/<pid>.json`, written atomically before it serves and
//! removed when it ends (or, if it died first, by the next daemon to
//! start). `doctor` reads these records and never signals. This module
//! never scans process names; the one thing it signals, at daemon start, is
//! a recorded upstream's process group whose members it has confirmed.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a predecessor's surviving upstream group gets between SIGTERM
/// and SIGKILL, and how long after SIGKILL the daemon waits to see it gone.
pub const SURVIVOR_TERM_GRACE: Duration = Duration::from_secs(5);
const SURVIVOR_KILL_WAIT: Duration = Duration::from_secs(2);
const SURVIVOR_POLL: Duration = Duration::from_millis(50);

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub pid: u32,
    /// Clock ticks since boot; 0 where unknown.
    #[serde(default)]
    pub start_time: u64,
    #[serde(default)]
    pub executable: String,
    #[serde(default)]
    pub cwd: String,
    #[serde(default)]
    pub started_unix_millis: u64,
    #[serde(default)]
    pub parent_pid_at_start: Option<u32>,
    #[serde(default)]
    pub process_group_id: Option<u32>,
    /// The session the process was in: with the group and start time, what
    /// tells a surviving member of an upstream's group from a stranger
    /// that reused the group id.
    #[serde(default)]
    pub session_id: Option<u32>,
    /// Start time of the parent at start (the daemon, for an upstream), to
    /// tell it from a process that reused its pid.
    #[serde(default)]
    pub parent_start_time: Option<u64>,
    /// daemon, bridge or upstream.
    #[serde(default)]
    pub role: String,
    /// http (the daemon) or stdio (bridges and upstreams).
    #[serde(default)]
    pub transport: String,
    #[serde(default)]
    pub bind: Option<String>,
    /// For bridges and upstreams: the upstream id.
    #[serde(default)]
    pub upstream: Option<String>,
    /// For bridges: the session at the daemon.
    #[serde(default)]
    pub session: Option<String>,
}

impl Record {
    /// A record of this very process.
    pub fn for_self(role: &str, transport: &str) -> Record {
        let pid = std::process::id();
        Record::for_pid(pid, role, transport)
    }

    /// A record of `pid` as the OS describes it now.
    pub fn for_pid(pid: u32, role: &str, transport: &str) -> Record {
        let (parent, group) = crate::platform::parent_and_group(pid)
            .map_or((None, None), |(p, g)| (Some(p), Some(g)));
        Record {
            pid,
            start_time: crate::platform::start_time(pid).unwrap_or(0),
            executable: crate::platform::exe(pid)
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            cwd: std::fs::read_link(format!("/proc/{pid}/cwd"))
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            started_unix_millis: crate::log::unix_millis(),
            parent_pid_at_start: parent,
            process_group_id: group,
            session_id: crate::platform::session(pid),
            parent_start_time: parent.and_then(crate::platform::start_time),
            role: role.into(),
            transport: transport.into(),
            ..Record::default()
        }
    }
}

impl Record {
    /// This process as the record describes it: pid and start time.
    pub fn process(&self) -> crate::platform::ProcessId {
        crate::platform::ProcessId {
            pid: self.pid,
            start_time: self.start_time,
        }
    }

    /// Is the recorded process still running (same pid, same start time)?
    pub fn alive(&self) -> bool {
        crate::platform::same_process(&self.process())
    }

    /// For an upstream: has the daemon that started it gone (its pid dead,
    /// or reused by a process started at another time)? False when the
    /// record does not say who started it.
    pub fn daemon_gone(&self) -> bool {
        self.role == "upstream"
            && self.parent_pid_at_start.is_some_and(|pid| {
                !crate::platform::same_process(&crate::platform::ProcessId {
                    pid,
                    start_time: self.parent_start_time.unwrap_or(0),
                })
            })
    }

    /// For an upstream: the live members of its process group, confirmed
    /// as the ones it started: same group and session as recorded, started
    /// no earlier than the upstream, and the upstream itself only with its
    /// recorded executable. Empty for other roles and for records too old
    /// to tell (no group or session recorded): nothing unconfirmed is named.
    pub fn group_members(&self) -> Vec<u32> {
        let (Some(group), Some(session)) = (self.process_group_id, self.session_id) else {
            return Vec::new();
        };
        if self.role != "upstream" || group <= 1 {
            return Vec::new();
        }
        // A live leader that runs another executable is not confirmed, and
        // then neither is its group.
        if self.alive() && !self.same_executable() {
            return Vec::new();
        }
        crate::platform::all_pids()
            .into_iter()
            .filter(|&pid| {
                crate::platform::parent_and_group(pid).is_some_and(|(_, g)| g == group)
                    && crate::platform::session(pid) == Some(session)
                    // The upstream itself started exactly then; every
                    // other member was forked from it, so no earlier.
                    && crate::platform::start_time(pid).is_some_and(|t| {
                        self.start_time == 0
                            || if pid == self.pid {
                                t == self.start_time
                            } else {
                                t >= self.start_time
                            }
                    })
                    && crate::platform::pid_alive(pid)
            })
            .collect()
    }

    /// Does the recorded pid run the recorded executable (or is none recorded)?
    fn same_executable(&self) -> bool {
        self.executable.is_empty()
            || crate::platform::exe(self.pid)
                .is_some_and(|e| e.display().to_string() == self.executable)
    }

    /// The members of this upstream's group still running while the daemon
    /// that started it is gone: what `doctor` reports and the next daemon
    /// stops.
    pub fn survivors(&self) -> Vec<u32> {
        if self.daemon_gone() {
            self.group_members()
        } else {
            Vec::new()
        }
    }
}

/// A record on disk, removed when dropped.
#[derive(Debug)]
pub struct Registration {
    path: PathBuf,
    record: Record,
}

impl Registration {
    pub fn write(dir: &Path, record: Record) -> std::io::Result<Registration> {
        let reg = Registration {
            path: dir.join(format!("{}.json", record.pid)),
            record,
        };
        reg.save()?;
        Ok(reg)
    }

    fn save(&self) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.record).map_err(std::io::Error::other)?;
        crate::state::home::write_atomic(&self.path, &bytes)
    }

    /// Change the record and write it again.
    pub fn update(&mut self, f: impl FnOnce(&mut Record)) {
        f(&mut self.record);
        if let Err(e) = self.save() {
            crate::log!("cannot update {}: {e}", self.path.display());
        }
    }

    pub fn remove(&self) {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => crate::log!("cannot remove {}: {e}", self.path.display()),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.remove();
    }
}

/// At daemon start, with the daemon lock held: stop every upstream group
/// a predecessor left running, then remove the records of processes that
/// are gone. A record whose group still has a member is kept: it is the
/// only trace of that process.
pub fn sweep(dir: &Path) {
    for (_, r) in list(dir).0 {
        let members = r.survivors();
        if !members.is_empty() {
            stop_survivors(&r, &members);
        }
    }
    let mut removed = Vec::new();
    for (path, r) in list(dir).0 {
        if r.alive() || !r.survivors().is_empty() {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(r.pid.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => crate::log!("cannot remove {}: {e}", path.display()),
        }
    }
    if !removed.is_empty() {
        crate::log!(
            "removed {} record(s) of processes that are gone: pid {}",
            removed.len(),
            removed.join(", ")
        );
    }
}

/// SIGTERM the upstream's group, wait (bounded) for its confirmed members
/// to go, then SIGKILL what is left after confirming it again.
fn stop_survivors(r: &Record, members: &[u32]) {
    let Some(group) = r.process_group_id else {
        return;
    };
    let pids: Vec<String> = members.iter().map(u32::to_string).collect();
    crate::log!(
        "upstream {} (pid {}) outlived daemon pid {}: pid {} still run in its process group {group}; \
         sending SIGTERM to the group",
        r.upstream.as_deref().unwrap_or("?"),
        r.pid,
        r.parent_pid_at_start.map_or("?".into(), |p| p.to_string()),
        pids.join(", ")
    );
    let gone = |wait: Duration| {
        let deadline = Instant::now() + wait;
        loop {
            if r.group_members().is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(SURVIVOR_POLL);
        }
    };
    if let Err(e) = crate::platform::signal_group(group, crate::platform::Signal::Term) {
        crate::log!("cannot signal process group {group}: {e}");
    }
    if gone(SURVIVOR_TERM_GRACE) {
        crate::log!("process group {group} stopped");
        return;
    }
    if !r.group_members().is_empty() {
        crate::log!(
            "process group {group} ignored SIGTERM for {} s: sending SIGKILL",
            SURVIVOR_TERM_GRACE.as_secs()
        );
        let _ = crate::platform::signal_group(group, crate::platform::Signal::Kill);
    }
    if gone(SURVIVOR_KILL_WAIT) {
        crate::log!("process group {group} stopped");
    } else {
        crate::log!("process group {group} still runs after SIGKILL");
    }
}

/// Record files that did not parse, with why.
pub type Corrupt = Vec<(PathBuf, String)>;

/// Every record, sorted by pid, and the files that did not parse.
pub fn list(dir: &Path) -> (Vec<(PathBuf, Record)>, Corrupt) {
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (good, bad);
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| parse(&b))
        {
            Ok(r) => good.push((path, r)),
            Err(why) => bad.push((path, why)),
        }
    }
    good.sort_by_key(|(_, r)| r.pid);
    bad.sort();
    (good, bad)
}

pub fn parse(bytes: &[u8]) -> Result<Record, String> {
    let r: Record = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if r.pid == 0 {
        return Err("pid 0".into());
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_and_partial_records_still_parse() {
        let r = parse(br#"{"pid": 42}"#).unwrap();
        assert_eq!(r.pid, 42);
        assert_eq!(r.parent_pid_at_start, None);
        let r =
            parse(br#"{"pid": 7, "role": "bridge", "extra_field_from_the_future": 1}"#).unwrap();
        assert_eq!(r.role, "bridge");
        assert!(parse(br#"{"pid": 0}"#).is_err());
        assert!(parse(b"{not json").is_err());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn survivors_are_confirmed_by_daemon_group_session_and_start_time() {
        // This test process stands in for an upstream; its parent for the daemon.
        let me = Record::for_self("upstream", "stdio");
        assert!(me.session_id.is_some() && me.parent_start_time.is_some());
        assert!(!me.daemon_gone(), "the parent runs");
        assert!(
            me.survivors().is_empty(),
            "no survivors while the daemon runs"
        );
        assert!(me.group_members().contains(&me.pid));
        let reused = Record {
            parent_start_time: me.parent_start_time.map(|t| t + 1),
            ..me.clone()
        };
        assert!(reused.daemon_gone(), "a reused daemon pid counts as gone");
        assert!(reused.survivors().contains(&me.pid));
        let other_session = Record {
            session_id: me.session_id.map(|s| s + 1),
            ..reused.clone()
        };
        assert!(other_session.group_members().is_empty());
        let later = Record {
            start_time: me.start_time + 1,
            ..reused.clone()
        };
        assert!(
            !later.group_members().contains(&me.pid),
            "a pid started at another time is a stranger"
        );
        let old = Record {
            session_id: None,
            ..reused.clone()
        };
        assert!(
            old.survivors().is_empty(),
            "unconfirmable without a session"
        );
        let bridge = Record {
            role: "bridge".into(),
            ..reused
        };
        assert!(!bridge.daemon_gone() && bridge.group_members().is_empty());
    }

    #[test]
    fn registrations_remove_their_file() {
        let dir = std::env::temp_dir().join(format!("mcpshare-registry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut reg = Registration::write(&dir, Record::for_self("bridge", "stdio")).unwrap();
        reg.update(|r| r.session = Some("s".into()));
        let (good, bad) = list(&dir);
        assert_eq!(good.len(), 1);
        assert!(bad.is_empty());
        assert_eq!(good[0].1.session.as_deref(), Some("s"));
        assert_eq!(
            good[0].1.parent_pid_at_start,
            Some(std::os::unix::process::parent_id())
        );
        drop(reg);
        assert!(list(&dir).0.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
