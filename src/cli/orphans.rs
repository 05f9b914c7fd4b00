//! `mcpshare orphans [--json] [--stop PID[@START]...]`: list the MCP servers
//! of this user left running without their client, and end the trees the
//! user names. The only place that signals them: by explicit pid only,
//! after judging each again from a fresh look at the OS, its start time
//! re-read right before each signal.

use crate::error::{Error, Result};
use crate::orphans::{self, Orphan, Scope, Verdict};
use crate::platform::{self, Signal};
use std::time::{Duration, Instant};

/// How long a tree gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long after SIGKILL before a survivor is reported.
const KILL_WAIT: Duration = Duration::from_secs(2);
const POLL_EVERY: Duration = Duration::from_millis(50);

/// A pid named on the command line, with the start time the user saw
/// (`PID@START`, START as `orphans --json` prints it), if given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub pid: u32,
    pub start_time: Option<u64>,
}

/// `PID` or `PID@START`.
pub fn parse_target(s: &str) -> Result<Target> {
    let bad = || {
        Error::Usage(format!(
            "'{s}' is not a pid: --stop takes PID or PID@START as 'mcpshare orphans' prints them"
        ))
    };
    let (pid, start) = match s.split_once('@') {
        Some((p, t)) => (p, Some(t.parse::<u64>().map_err(|_| bad())?)),
        None => (s, None),
    };
    let pid: u32 = pid.parse().map_err(|_| bad())?;
    if pid <= 1 {
        return Err(bad());
    }
    Ok(Target {
        pid,
        start_time: start,
    })
}

/// `mcpshare orphans [--json]`.
pub fn list(as_json: bool) -> Result<i32> {
    let found = orphans::scan(&Scope::from_env())?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string(&found).unwrap_or_else(|_| "[]".into())
        );
    } else {
        print!("{}", orphans::render(&found));
        if let Some(o) = found.first() {
            println!(
                "stop one with: mcpshare orphans --stop {}@{}",
                o.pid, o.start_time
            );
        }
    }
    Ok(0)
}

/// What happened to one process of a tree.
#[derive(Debug, serde::Serialize)]
pub struct Ended {
    pub pid: u32,
    /// "SIGTERM", "SIGKILL", or "survived" (still running after SIGKILL).
    pub by: &'static str,
    pub rss_bytes: u64,
}

/// What `--stop` did with one named pid.
#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub pid: u32,
    pub stopped: bool,
    /// Why nothing was signalled, when it was refused.
    pub refused: Option<String>,
    pub processes: Vec<Ended>,
    pub freed_bytes: u64,
}

/// `mcpshare orphans --stop PID...`: 0 when every named tree ended, 1
/// when one was refused or outlived SIGKILL.
pub fn stop(targets: &[Target], as_json: bool) -> Result<i32> {
    let scope = Scope::from_env();
    let mut outcomes = Vec::new();
    for t in targets {
        let outcome = match orphans::recheck(&scope, t.pid, t.start_time)? {
            Verdict::Orphan(o) => end_tree(&o),
            v => Outcome {
                pid: t.pid,
                stopped: false,
                refused: Some(refusal(t.pid, &v)),
                processes: Vec::new(),
                freed_bytes: 0,
            },
        };
        outcomes.push(outcome);
    }
    if as_json {
        println!(
            "{}",
            serde_json::to_string(&outcomes).unwrap_or_else(|_| "[]".into())
        );
    } else {
        print!("{}", render_outcomes(&outcomes));
    }
    Ok(i32::from(outcomes.iter().any(|o| !o.stopped)))
}

/// Why `--stop` refuses `pid`, in words.
pub fn refusal(pid: u32, v: &Verdict) -> String {
    match v {
        Verdict::Orphan(_) => format!("pid {pid} is an orphaned MCP server"),
        Verdict::Gone => format!("pid {pid} is not running"),
        Verdict::Reused { want, now } => format!(
            "pid {pid} started at {now}, not at {want}: the pid was reused by another process"
        ),
        Verdict::OtherUser => format!("pid {pid} belongs to another user"),
        Verdict::Protected => format!("pid {pid} is this mcpshare or one of its ancestors"),
        Verdict::Ours => format!(
            "pid {pid} is mcpshare's own (daemon, bridge or upstream): see 'mcpshare doctor processes'"
        ),
        Verdict::HasParent { parent } => {
            format!("pid {pid} is not orphaned: its parent pid {parent} is alive")
        }
        Verdict::NotServer => format!(
            "pid {pid} is orphaned but not an MCP server (no config entry or launcher pattern matches)"
        ),
        Verdict::ClientAlive { writer } => {
            format!("pid {pid} still has a client: pid {writer} writes to its stdin")
        }
        Verdict::InTree { root } => format!(
            "pid {pid} is part of the orphaned tree of pid {root}: stop that with --stop {root}"
        ),
    }
}

/// Is `m` still the process the verdict saw?
/// Is `m` still the process the scan saw: the same start time (known, not
/// 0) and the same command line? Only then is it signalled.
fn same(m: &crate::orphans::Member) -> bool {
    m.start_time != 0
        && platform::start_time(m.pid) == Some(m.start_time)
        && crate::platform::procs::cmdline(m.pid).is_ok_and(|argv| argv.join(" ") == m.command)
}

/// SIGTERM the tree (its group, when the root leads a group of nothing
/// but the tree; else each process, children first), wait, SIGKILL what
/// is left, wait again. Every signal goes to a pid whose start time was
/// read again just before.
fn end_tree(o: &Orphan) -> Outcome {
    let mut outcome = Outcome {
        pid: o.pid,
        stopped: false,
        refused: None,
        processes: Vec::new(),
        freed_bytes: 0,
    };
    // The last look before the first signal: same process, still adopted.
    let still = platform::start_time(o.pid) == Some(o.start_time)
        && platform::parent_and_group(o.pid).map(|(p, _)| p) == Some(o.parent);
    if !still {
        outcome.refused = Some(format!(
            "pid {} changed between the check and the signal (restarted or re-parented); nothing is signalled",
            o.pid
        ));
        return outcome;
    }
    let pids = o.pids();
    let group_is_tree = o.process_group == o.pid
        && platform::all_pids().into_iter().all(|p| {
            platform::parent_and_group(p).is_none_or(|(_, g)| g != o.process_group)
                || pids.contains(&p)
        });
    if group_is_tree {
        let _ = platform::signal_group(o.process_group, Signal::Term);
    } else {
        for m in o.members.iter().rev() {
            if same(m) {
                let _ = platform::signal(m.pid, Signal::Term);
            }
        }
    }
    let alive = |o: &Orphan| -> Vec<u32> {
        o.members
            .iter()
            .filter(|m| same(m))
            .map(|m| m.pid)
            .collect()
    };
    let wait = |limit: Duration| {
        let deadline = Instant::now() + limit;
        loop {
            let left = alive(o);
            if left.is_empty() || Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(POLL_EVERY);
        }
    };
    let after_term = wait(STOP_GRACE);
    for m in o.members.iter().rev() {
        if after_term.contains(&m.pid) && same(m) {
            let _ = platform::signal(m.pid, Signal::Kill);
        }
    }
    let after_kill = if after_term.is_empty() {
        Vec::new()
    } else {
        wait(KILL_WAIT)
    };
    for m in &o.members {
        let by = if after_kill.contains(&m.pid) {
            "survived"
        } else if after_term.contains(&m.pid) {
            "SIGKILL"
        } else {
            "SIGTERM"
        };
        if by != "survived" {
            outcome.freed_bytes += m.rss_bytes;
        }
        outcome.processes.push(Ended {
            pid: m.pid,
            by,
            rss_bytes: m.rss_bytes,
        });
    }
    outcome.stopped = after_kill.is_empty();
    outcome
}

/// One line per process ended (or refused), then the memory freed.
pub fn render_outcomes(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    for o in outcomes {
        if let Some(why) = &o.refused {
            s.push_str(&format!("pid {}: refused: {why}\n", o.pid));
            continue;
        }
        for p in &o.processes {
            s.push_str(&match p.by {
                "survived" => format!("pid {}: still running after SIGKILL\n", p.pid),
                by => format!(
                    "pid {}: ended by {by} ({})\n",
                    p.pid,
                    orphans::mib(p.rss_bytes)
                ),
            });
        }
    }
    let stopped = outcomes.iter().filter(|o| o.stopped).count();
    let freed: u64 = outcomes.iter().map(|o| o.freed_bytes).sum();
    s.push_str(&format!(
        "stopped {stopped} of {} tree{}, freed {}\n",
        outcomes.len(),
        if outcomes.len() == 1 { "" } else { "s" },
        orphans::mib(freed)
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_targets_parse() {
        assert_eq!(
            parse_target("123").unwrap(),
            Target {
                pid: 123,
                start_time: None
            }
        );
        assert_eq!(
            parse_target("123@456").unwrap(),
            Target {
                pid: 123,
                start_time: Some(456)
            }
        );
        for bad in ["", "x", "1", "0", "-5", "12@", "12@x", "@5", "12@3@4"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }
}
