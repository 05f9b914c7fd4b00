//! A server's `notifications/*/list_changed` reaches each session as often
//! as the server sent it, and mcpshare's own announcement after a restart
//! once (issue 12: "send what the server sends, once").

use crate::common::*;
use serde_json::json;
use std::time::{Duration, Instant};

const TOOLS: &str = "notifications/tools/list_changed";
/// How long a client is read after its last expected message, for a copy.
const SETTLE: Duration = Duration::from_millis(300);

/// Read `b` until it has `n` messages of `method` (bounded), then for
/// SETTLE more: how many it got in all.
fn count_settled(b: &mut Bridge, method: &str, n: usize) -> usize {
    let deadline = Instant::now() + WAIT;
    while b
        .backlog
        .iter()
        .filter(|m| m["method"] == json!(method))
        .count()
        < n
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match b.recv(left) {
            Some(m) => b.backlog.push(m),
            None => break,
        }
    }
    b.count_method(method, SETTLE)
}

fn initialized() -> serde_json::Value {
    json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
}

/// One announcement, three sessions: one initialized in order, one whose
/// `initialized` came before its `initialize` answer, one not yet
/// initialized (its stream not open: the message waits in its outbox).
/// Each gets it once; and the next one once more.
#[test]
fn an_announcement_reaches_each_session_once_whatever_its_state() {
    let home = TestHome::new("once");
    let (mut a, up) = home.client();
    let mut b = home.bridge(&[]);
    b.send(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": init_params(json!({}))}));
    b.send(&initialized());
    assert!(b.response(&json!(0), WAIT).get("result").is_some());
    let mut c = home.bridge(&[]);
    let r = c.request(json!(0), "initialize", init_params(json!({})));
    assert!(r.get("result").is_some(), "{r}");

    // The fixture writes the notification before its answer: once `a` has
    // the answer, the daemon has routed the notification to every session.
    assert_eq!(a.call_text(json!(1), "list_changed", json!({})), "sent");
    c.send(&initialized());
    for (name, s) in [("a", &mut a), ("b", &mut b), ("c", &mut c)] {
        assert_eq!(count_settled(s, TOOLS, 1), 1, "session {name}");
    }
    assert_eq!(c.call_text(json!(2), "list_changed", json!({})), "sent");
    for (name, s) in [("a", &mut a), ("b", &mut b), ("c", &mut c)] {
        assert_eq!(count_settled(s, TOOLS, 2), 2, "session {name}, twice");
    }
    assert_eq!(b.upstream_pid(json!(3)), up, "not one shared upstream");
}

/// After `mcpshare restart` the sessions are attached when the new process
/// starts: each gets its two announcements once, and mcpshare's own (each
/// list may have changed) once.
#[test]
fn a_restarted_servers_announcements_reach_each_session_once() {
    let home = TestHome::new("restart-once");
    let env = [("FIXTURE_LIST_CHANGED_AT_START", "2")];
    let mut a = home.bridge_with(&[], &env);
    a.initialize();
    let first = a.upstream_pid(json!("pid"));
    home.seen_upstreams.lock().unwrap().push(first);
    let mut b = home.bridge_with(&[], &env);
    b.initialize();
    assert_eq!(
        b.upstream_pid(json!("pid")),
        first,
        "not one shared upstream"
    );
    // What the first start announced (to `a` at most) is not counted.
    for s in [&mut a, &mut b] {
        s.count_method(TOOLS, SETTLE);
        s.backlog.clear();
    }
    let id = home.status()["upstreams"][0]["id"]
        .as_str()
        .expect("an upstream id")
        .to_string();
    let out = home.mcpshare(&["restart", &id]);
    assert!(out.status.success(), "{out:?}");
    let second = a.upstream_pid(json!("pid2"));
    home.seen_upstreams.lock().unwrap().push(second);
    assert_ne!(second, first, "not restarted");
    for (name, s) in [("a", &mut a), ("b", &mut b)] {
        assert_eq!(count_settled(s, TOOLS, 3), 3, "session {name}: tools");
        for list in ["prompts", "resources"] {
            let method = format!("notifications/{list}/list_changed");
            assert_eq!(count_settled(s, &method, 1), 1, "session {name}: {list}");
        }
    }
}
