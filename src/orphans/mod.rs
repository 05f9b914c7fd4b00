//! `mcpshare orphans`: MCP servers of this user left running after their
//! client is gone: the parent is gone (reparented to init or the user's
//! service manager) and the command line is a configured or launcher-shaped
//! server; one whose stdin pipe someone still writes to has a client. Read only: this
//! module never signals (the stop lives in the CLI, after [`recheck`]),
//! never lists mcpshare's own processes, and never judges a process by its
//! name alone.

pub mod known;
pub mod pattern;

use crate::error::{Error, Result};
use crate::platform::{self, procs};
use crate::state::home::Home;
use known::KnownServer;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

/// Where to look for what is ours and what clients configure.
#[derive(Debug, Default)]
pub struct Scope {
    /// mcpshare's home: its registry and manifest name mcpshare's own processes.
    pub mcpshare_home: Option<Home>,
    /// The user's home, where client configs live.
    pub user_home: Option<PathBuf>,
}

impl Scope {
    /// From the environment: `MCPSHARE_HOME` (or its default) and `HOME`.
    pub fn from_env() -> Scope {
        Scope {
            mcpshare_home: Home::existing().ok(),
            user_home: std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
        }
    }
}

/// One process as the OS showed it when the snapshot was taken.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub parent: u32,
    pub group: u32,
    pub start_time: u64,
    /// None when the OS would not say.
    pub uid: Option<u32>,
    pub argv: Vec<String>,
    pub rss_bytes: u64,
    pub age_secs: u64,
    /// The inode of the pipe on stdin, if stdin is a pipe.
    pub stdin_pipe: Option<u64>,
}

/// Every process, with who writes to which pipe and what is mcpshare's.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub procs: BTreeMap<u32, Proc>,
    /// Pipe inode → pids holding it open for writing (this user's only).
    pub writers: HashMap<u64, BTreeSet<u32>>,
    /// This user's uid.
    pub uid: u32,
    /// This process.
    pub me: u32,
    /// mcpshare's own processes: with their descendants and process
    /// groups, never listed.
    pub ours: BTreeSet<u32>,
    pub known: Vec<KnownServer>,
}

impl Snapshot {
    /// Read every process now. Fails where the OS cannot be read
    /// ("unsupported" outside Linux).
    pub fn take(scope: &Scope) -> Result<Snapshot> {
        procs::process_listing().map_err(|e| Error::io("cannot list processes", e))?;
        let uid = platform::uid().unwrap_or(u32::MAX);
        let mut snap = Snapshot {
            uid,
            me: std::process::id(),
            known: scope
                .user_home
                .as_deref()
                .map(known::known_servers)
                .unwrap_or_default(),
            ..Snapshot::default()
        };
        for pid in platform::all_pids() {
            let Some((parent, group)) = platform::parent_and_group(pid) else {
                continue;
            };
            let mut p = Proc {
                pid,
                parent,
                group,
                start_time: platform::start_time(pid).unwrap_or(0),
                uid: procs::process_uid(pid).ok(),
                ..Proc::default()
            };
            if p.uid == Some(uid) {
                p.argv = procs::cmdline(pid).unwrap_or_default();
                p.rss_bytes = procs::resident_bytes(pid).unwrap_or(0);
                p.age_secs = procs::process_age(pid).map_or(0, |d| d.as_secs());
                p.stdin_pipe = procs::stdin_pipe(pid).ok().flatten();
                for end in procs::pipe_ends(pid).unwrap_or_default() {
                    if end.writable {
                        snap.writers.entry(end.inode).or_default().insert(pid);
                    }
                }
            }
            snap.procs.insert(pid, p);
        }
        snap.ours = mcpshare_processes(scope, &snap);
        Ok(snap)
    }

    fn parent_of(&self, pid: u32) -> Option<u32> {
        self.procs.get(&pid).map(|p| p.parent)
    }

    /// `pid`, its parent, its parent's parent… up to pid 1 (bounded, in
    /// case the snapshot holds a cycle from pid reuse mid-scan).
    fn chain(&self, pid: u32) -> Vec<u32> {
        let mut out = vec![pid];
        let mut at = pid;
        while let Some(p) = self.parent_of(at) {
            if p == 0 || out.len() > 4096 || out.contains(&p) {
                break;
            }
            out.push(p);
            at = p;
        }
        out
    }

    /// This process and its ancestors.
    fn protected(&self) -> BTreeSet<u32> {
        self.chain(self.me).into_iter().collect()
    }

    /// Is `pid` mcpshare's: on record, or descended from (or in the
    /// process group of a process descended from) one that is?
    fn is_ours(&self, pid: u32) -> bool {
        let hit = |p: u32| self.chain(p).iter().any(|a| self.ours.contains(a));
        hit(pid)
            || self
                .procs
                .get(&pid)
                .is_some_and(|p| p.group > 1 && self.procs.contains_key(&p.group) && hit(p.group))
    }

    /// Who adopted `pid` if its parent is gone: pid 1, or this user's
    /// service manager (`systemd --user`, a child subreaper).
    fn adopter(&self, pid: u32) -> Option<Adopter> {
        let parent = self.parent_of(pid)?;
        if parent == 1 {
            return Some(Adopter::Init);
        }
        let p = self.procs.get(&parent)?;
        let name = p.argv.first().map(|a| a.rsplit('/').next().unwrap_or(a));
        (p.uid == Some(self.uid) && name == Some("systemd") && p.argv.iter().any(|a| a == "--user"))
            .then_some(Adopter::UserManager(parent))
    }

    fn children(&self) -> HashMap<u32, Vec<u32>> {
        let mut kids: HashMap<u32, Vec<u32>> = HashMap::new();
        for p in self.procs.values() {
            kids.entry(p.parent).or_default().push(p.pid);
        }
        kids
    }

    /// `root` and its descendants of this user, parents before children.
    fn tree(&self, root: u32, kids: &HashMap<u32, Vec<u32>>) -> Vec<u32> {
        let mut out = vec![root];
        let mut i = 0;
        while i < out.len() {
            for &k in kids.get(&out[i]).map(Vec::as_slice).unwrap_or_default() {
                if !out.contains(&k) && self.procs[&k].uid == Some(self.uid) {
                    out.push(k);
                }
            }
            i += 1;
        }
        out
    }
}

/// The process that adopted an orphan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adopter {
    Init,
    UserManager(u32),
}

/// One process of an orphaned tree.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    pub pid: u32,
    pub start_time: u64,
    pub rss_bytes: u64,
    pub command: String,
}

/// An orphaned MCP server: a whole process tree, named by its root.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Orphan {
    pub pid: u32,
    /// The root's start time (clock ticks since boot): `--stop PID@START`
    /// refuses a pid started at another time.
    pub start_time: u64,
    pub process_group: u32,
    /// The pid that adopted it (1, or the user's service manager).
    pub parent: u32,
    pub age_secs: u64,
    /// Resident memory of the whole tree.
    pub rss_bytes: u64,
    pub command: String,
    /// `client/server` of the config entry it runs, if any.
    pub client: Option<String>,
    /// Why it counts as an orphaned MCP server.
    pub reasons: Vec<String>,
    /// Root first, then its descendants, parents before children.
    pub members: Vec<Member>,
}

impl Orphan {
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().map(|m| m.pid).collect()
    }
}

/// What a pid is, asked right before `--stop` signals it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Orphan(Box<Orphan>),
    Gone,
    /// Started at another time than the caller saw: the pid was reused.
    Reused {
        want: u64,
        now: u64,
    },
    OtherUser,
    /// This process or one of its ancestors.
    Protected,
    /// mcpshare's own (daemon, bridge, upstream): `doctor processes`' business.
    Ours,
    /// Its parent is alive.
    HasParent {
        parent: u32,
    },
    /// Orphaned, but neither configured nor launcher-shaped.
    NotServer,
    /// Its client still writes to its stdin.
    ClientAlive {
        writer: u32,
    },
    /// Part of the orphaned tree rooted at `root`.
    InTree {
        root: u32,
    },
}

/// The verdict on the tree rooted at `pid` in `snap`.
pub fn judge(snap: &Snapshot, pid: u32) -> Verdict {
    judge_with(snap, pid, &snap.children(), &snap.protected())
}

fn judge_with(
    snap: &Snapshot,
    pid: u32,
    kids: &HashMap<u32, Vec<u32>>,
    protected: &BTreeSet<u32>,
) -> Verdict {
    let Some(p) = snap.procs.get(&pid) else {
        return Verdict::Gone;
    };
    if p.uid != Some(snap.uid) || pid <= 1 {
        return Verdict::OtherUser;
    }
    if protected.contains(&pid) {
        return Verdict::Protected;
    }
    if snap.is_ours(pid) {
        return Verdict::Ours;
    }
    let Some(adopter) = snap.adopter(pid) else {
        // A descendant of an orphaned root is stopped with its tree.
        let root = snap.chain(pid).into_iter().skip(1).find(|&a| {
            snap.adopter(a).is_some()
                && matches!(judge_with(snap, a, kids, protected), Verdict::Orphan(_))
        });
        return match root {
            Some(root) => Verdict::InTree { root },
            None => Verdict::HasParent { parent: p.parent },
        };
    };
    let tree: Vec<u32> = snap
        .tree(pid, kids)
        .into_iter()
        .filter(|m| !protected.contains(m) && !snap.is_ours(*m))
        .collect();
    let mut reasons = vec![match adopter {
        Adopter::Init => "parent gone: adopted by pid 1".to_string(),
        Adopter::UserManager(m) => {
            format!("parent gone: adopted by the user's service manager pid {m}")
        }
    }];
    // A dead stdin pipe alone is not enough: daemons of every kind (tool
    // backends, agents) keep one; it only supports a match below.
    let mut evidence = false;
    if let Some(inode) = p.stdin_pipe {
        let outside = snap
            .writers
            .get(&inode)
            .and_then(|w| w.iter().find(|w| !tree.contains(w)).copied());
        if let Some(writer) = outside {
            return Verdict::ClientAlive { writer };
        }
        reasons.push(format!(
            "stdin is a pipe (pipe:[{inode}]) whose writer is gone"
        ));
    }
    let mut client = None;
    for m in &tree {
        let argv = &snap.procs[m].argv;
        if let Some(k) = known::matching(&snap.known, argv) {
            reasons.push(format!(
                "pid {m} runs server {} of {}'s config",
                k.server, k.client
            ));
            client = Some(format!("{}/{}", k.client, k.server));
            evidence = true;
            break;
        }
    }
    for m in &tree {
        if let Some((pat, word)) = pattern::matches(&snap.procs[m].argv) {
            reasons.push(format!("pid {m} matches launcher pattern {pat} ({word})"));
            evidence = true;
            break;
        }
    }
    if !evidence {
        return Verdict::NotServer;
    }
    let members: Vec<Member> = tree
        .iter()
        .map(|m| {
            let q = &snap.procs[m];
            Member {
                pid: q.pid,
                start_time: q.start_time,
                rss_bytes: q.rss_bytes,
                command: q.argv.join(" "),
            }
        })
        .collect();
    Verdict::Orphan(Box::new(Orphan {
        pid,
        start_time: p.start_time,
        process_group: p.group,
        parent: p.parent,
        age_secs: p.age_secs,
        rss_bytes: members.iter().map(|m| m.rss_bytes).sum(),
        command: p.argv.join(" "),
        client,
        reasons,
        members,
    }))
}

/// Every orphaned MCP server in `snap`, by root pid.
pub fn orphans(snap: &Snapshot) -> Vec<Orphan> {
    let kids = snap.children();
    let protected = snap.protected();
    snap.procs
        .keys()
        .filter(|&&pid| snap.adopter(pid).is_some())
        .filter_map(|&pid| match judge_with(snap, pid, &kids, &protected) {
            Verdict::Orphan(o) => Some(*o),
            _ => None,
        })
        .collect()
}

/// Take a snapshot and list the orphans in it.
pub fn scan(scope: &Scope) -> Result<Vec<Orphan>> {
    Ok(orphans(&Snapshot::take(scope)?))
}

/// The verdict on `pid` now, from a fresh snapshot; with `want_start`,
/// a pid started at any other time is [`Verdict::Reused`].
pub fn recheck(scope: &Scope, pid: u32, want_start: Option<u64>) -> Result<Verdict> {
    Ok(recheck_in(&Snapshot::take(scope)?, pid, want_start))
}

/// [`recheck`] on a given snapshot.
pub fn recheck_in(snap: &Snapshot, pid: u32, want_start: Option<u64>) -> Verdict {
    if let (Some(want), Some(p)) = (want_start, snap.procs.get(&pid))
        && p.start_time != want
    {
        return Verdict::Reused {
            want,
            now: p.start_time,
        };
    }
    judge(snap, pid)
}

/// The processes mcpshare owns: on record and alive (same start time),
/// the daemon named by the manifest, confirmed members of recorded
/// upstream groups, and any process running the mcpshare executable.
fn mcpshare_processes(scope: &Scope, snap: &Snapshot) -> BTreeSet<u32> {
    let mut ours = BTreeSet::new();
    if let Some(home) = &scope.mcpshare_home {
        for (_, r) in crate::state::registry::list(&home.processes_dir()).0 {
            if r.alive() {
                ours.insert(r.pid);
            }
            ours.extend(r.group_members());
        }
        if let Some(m) = crate::state::manifest::Manifest::read(&home.manifest())
            && platform::same_process(&m.process())
        {
            ours.insert(m.pid);
        }
    }
    let me = std::env::current_exe().ok();
    for p in snap.procs.values().filter(|p| p.uid == Some(snap.uid)) {
        let named = p
            .argv
            .first()
            .is_some_and(|a| a.rsplit('/').next() == Some("mcpshare"));
        if named || (me.is_some() && platform::exe(p.pid) == me) {
            ours.insert(p.pid);
        }
    }
    ours
}

/// Bytes as the report shows them: MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// An age as the report shows it: `45s`, `12m`, `3h05m`, `2d04h`.
pub fn human_age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// The human report: one block per orphan, then the total line.
pub fn render(orphans: &[Orphan]) -> String {
    let mut s = String::new();
    for o in orphans {
        s.push_str(&format!(
            "pid {}  age {}  rss {}  {}\n",
            o.pid,
            human_age(o.age_secs),
            mib(o.rss_bytes),
            o.command
        ));
        if o.members.len() > 1 {
            let pids: Vec<String> = o.pids().iter().map(u32::to_string).collect();
            s.push_str(&format!("  tree: pid {}\n", pids.join(", ")));
        }
        if let Some(c) = &o.client {
            s.push_str(&format!("  config: {c}\n"));
        }
        for r in &o.reasons {
            s.push_str(&format!("  why: {r}\n"));
        }
    }
    let total: u64 = orphans.iter().map(|o| o.rss_bytes).sum();
    s.push_str(&format!(
        "{} orphan{}, {}\n",
        orphans.len(),
        if orphans.len() == 1 { "" } else { "s" },
        mib(total)
    ));
    s
}

#[cfg(test)]
mod tests;
