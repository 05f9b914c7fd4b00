//! The process registry: every process mcpshare runs or serves from — the
//! daemon, each bridge, each upstream it spawned — has a record
//! `<home>/processes/<pid>.json`, written atomically before it serves and
//! removed when it ends. `doctor` reads only these records: it never scans
//! process names and never kills anything.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
        let (parent, group) =
            crate::sys::parent_and_group(pid).map_or((None, None), |(p, g)| (Some(p), Some(g)));
        Record {
            pid,
            start_time: crate::sys::start_time(pid).unwrap_or(0),
            executable: crate::sys::exe(pid)
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            cwd: std::fs::read_link(format!("/proc/{pid}/cwd"))
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            started_unix_millis: crate::log::unix_millis(),
            parent_pid_at_start: parent,
            process_group_id: group,
            role: role.into(),
            transport: transport.into(),
            ..Record::default()
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
        crate::home::write_atomic(&self.path, &bytes)
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
