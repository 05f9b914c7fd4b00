//! The live feed of a logged-in page: one SSE stream carrying the state
//! (daemon, upstreams, sessions with what their bridges reported), new
//! log lines per upstream, and the doctor's findings. The browser opens it
//! once; the daemon pushes what changed, so the page never polls.

use super::{Backend, Console, auth};
use crate::net::http::{Request, Sse};
use crate::pool::lock;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often the feed looks for changes (bridge reports wake it at once).
const TICK: Duration = Duration::from_millis(500);
/// How often the figures that always move (uptime, memory) are re-sent.
const FIGURES_EVERY: Duration = Duration::from_secs(5);
/// How often the doctor's findings are re-computed.
const DOCTOR_EVERY: Duration = Duration::from_secs(30);
/// Log lines sent for an upstream first seen.
const LOG_TAIL: usize = 50;
/// Log lines sent per upstream per tick, at most.
const LOG_BATCH: usize = 500;

/// The resident memory of `pid` in bytes, where the OS tells it.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line["VmRSS:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The state as the page shows it, without the figures that always move.
fn state(c: &Console, b: &dyn Backend) -> Value {
    let mut st = b.status();
    let rings = lock(&c.rings);
    let sessions = b.sessions();
    let mut with_session = Vec::new();
    let mut out = Vec::new();
    for s in &sessions {
        let pid = s.bridge.as_ref().map(|p| p.pid);
        let events = pid.map(|p| rings.of(p)).unwrap_or_default();
        let started = events.iter().rev().find(|e| e.report.kind == "started");
        with_session.extend(pid);
        out.push(json!({
            "id": s.id,
            "upstream": s.upstream,
            "client_name": s.client_name,
            "client_version": started.and_then(|e| e.report.client_version.clone()),
            "protocol": s.protocol,
            "bridge_pid": pid,
            "cwd": started.and_then(|e| e.report.cwd.clone()).unwrap_or_else(|| s.cwd.clone()),
            "hub": s.hub,
            "events": events,
        }));
    }
    out.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    // Bridges with no session now: one that lost its daemon, say.
    let bridges: Vec<Value> = rings
        .all()
        .into_iter()
        .filter(|(p, _)| !with_session.contains(p))
        .map(|(pid, events)| json!({"pid": pid, "events": events}))
        .collect();
    st["sessions"] = json!(out);
    st["bridges"] = json!(bridges);
    st["kind"] = json!("state");
    st
}

/// Add the figures that always move: now, uptime, memory.
fn with_figures(mut st: Value) -> Value {
    let now = crate::log::unix_millis();
    st["now_ms"] = json!(now);
    let started = st["daemon"]["started_at"].as_u64().unwrap_or(now);
    st["daemon"]["uptime_s"] = json!(now.saturating_sub(started) / 1000);
    st["daemon"]["rss_bytes"] = json!(rss_bytes(std::process::id()));
    if let Some(ups) = st["upstreams"].as_array_mut() {
        for u in ups {
            let rss = u["pid"]
                .as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .and_then(rss_bytes);
            u["rss_bytes"] = json!(rss);
        }
    }
    st
}

struct Feeding<'a>(&'a Console);

impl Drop for Feeding<'_> {
    fn drop(&mut self) {
        self.0.feeds.fetch_sub(1, Ordering::AcqRel);
    }
}

pub fn run(c: &Console, b: &dyn Backend, req: Request, expires: Instant) {
    if c.feeds.fetch_add(1, Ordering::AcqRel) >= super::MAX_FEEDS {
        c.feeds.fetch_sub(1, Ordering::AcqRel);
        return super::error(
            req,
            503,
            &format!("{} console pages are open already", super::MAX_FEEDS),
        );
    }
    let _feeding = Feeding(c);
    let cookie = auth::cookie_value(req.header("Cookie"), &c.cookie_name()).map(str::to_string);
    let Ok(mut sse) = Sse::start(req, &super::PAGE_HEADERS) else {
        return;
    };
    let mut last_state = Value::Null;
    let mut figures_at: Option<Instant> = None;
    let mut doctor_at: Option<Instant> = None;
    let mut log_after: HashMap<String, u64> = HashMap::new();
    loop {
        let now = Instant::now();
        let still_in = lock(&c.auth).login(cookie.as_deref(), now).is_ok();
        if now >= expires || !still_in || b.is_stopping() || sse.client_gone() {
            break;
        }
        let st = state(c, b);
        let stale = figures_at.is_none_or(|t| t.elapsed() >= FIGURES_EVERY);
        if st != last_state || stale {
            last_state = st.clone();
            figures_at = Some(Instant::now());
            if sse.event(&with_figures(st).to_string()).is_err() {
                break;
            }
        }
        if send_logs(b, &mut sse, &last_state, &mut log_after).is_err() {
            break;
        }
        if doctor_at.is_none_or(|t| t.elapsed() >= DOCTOR_EVERY) {
            doctor_at = Some(Instant::now());
            let findings = json!({"kind": "doctor", "findings": b.doctor()});
            if sse.event(&findings.to_string()).is_err() {
                break;
            }
        }
        let seq = lock(&c.rings).seq();
        let rings = lock(&c.rings);
        let _ = c
            .reported
            .wait_timeout_while(rings, TICK, |r| r.seq() == seq);
    }
    let _ = sse.finish();
}

fn send_logs(
    b: &dyn Backend,
    sse: &mut Sse,
    st: &Value,
    log_after: &mut HashMap<String, u64>,
) -> std::io::Result<()> {
    let ids: Vec<String> = st["upstreams"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| u["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    log_after.retain(|id, _| ids.contains(id));
    for id in ids {
        let after = log_after.get(&id).copied();
        let n = if after.is_some() { LOG_BATCH } else { LOG_TAIL };
        let Some(lines) = b.log_lines(&id, n, after) else {
            continue;
        };
        if let Some((last, _)) = lines.last() {
            log_after.insert(id.clone(), *last);
        } else {
            log_after.entry(id.clone()).or_insert(0);
            continue;
        }
        let lines: Vec<Value> = lines
            .into_iter()
            .map(|(n, text)| json!({"n": n, "text": text}))
            .collect();
        sse.event(&json!({"kind": "log", "id": id, "lines": lines}).to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_from_proc_status() {
        let status = "Name:\tx\nVmPeak:\t  999 kB\nVmRSS:\t    1234 kB\nThreads: 3\n";
        assert_eq!(parse_vm_rss(status), Some(1234 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        assert_eq!(parse_vm_rss("VmRSS: lots\n"), None);
    }
}
