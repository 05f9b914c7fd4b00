//! Sharing one upstream: identity, per-session ids, crash handling,
//! notifications to every session.

use crate::common::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn sessions_with_the_same_ids_each_get_their_own_answers() {
    let home = TestHome::new("ids");
    let (mut a, _) = home.client();
    let (mut b, _) = home.client();
    for round in 0..50 {
        let id = json!(round % 3); // both sessions reuse the same small ids
        a.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": format!("a{round}")}}}));
        b.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": format!("b{round}")}}}));
        assert_eq!(
            text_of(&a.response(&id, WAIT)).unwrap(),
            format!("a{round}")
        );
        assert_eq!(
            text_of(&b.response(&id, WAIT)).unwrap(),
            format!("b{round}")
        );
    }
    // String and number ids with the same digits stay apart, types kept.
    a.send(&json!({"jsonrpc": "2.0", "id": "1", "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "s"}}}));
    a.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "n"}}}));
    assert_eq!(text_of(&a.response(&json!("1"), WAIT)).unwrap(), "s");
    assert_eq!(text_of(&a.response(&json!(1), WAIT)).unwrap(), "n");
    assert_eq!(a.upstream_pid(json!(90)), b.upstream_pid(json!(90)));
}

/// `n` bridges pipeline `calls` calls each, then collect: every reply must
/// reach its caller (id and text match) and none may be an error.
fn storm(home: &TestHome, n: usize, calls: usize, bridge: impl Fn() -> Bridge) {
    let mut bridges: Vec<Bridge> = (0..n).map(|_| bridge()).collect();
    for b in bridges.iter_mut() {
        b.initialize();
    }
    for (i, b) in bridges.iter_mut().enumerate() {
        for c in 0..calls {
            b.send(&json!({"jsonrpc": "2.0", "id": c, "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": format!("{}", i * 1000 + c)}}}));
        }
    }
    for (i, b) in bridges.iter_mut().enumerate() {
        for c in 0..calls {
            let r = b.response(&json!(c), WAIT);
            assert_eq!(
                text_of(&r),
                Some(format!("{}", i * 1000 + c)),
                "cross-talk or error: {r}"
            );
        }
    }
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(bridges[0].upstream_pid(json!("p")));
}

#[test]
fn attach_storm_every_reply_reaches_its_caller() {
    let home = TestHome::new("storm");
    storm(&home, 8, 200, || home.bridge(&[]));
}

/// Under a descriptor limit far below the calls in flight (64 here, with
/// 12 bridges × 150 pipelined calls), the bridges and the daemon queue what
/// they cannot hold open: nothing fails, nothing hangs.
#[cfg(unix)]
#[test]
fn a_burst_beyond_the_descriptor_limit_queues_and_loses_nothing() {
    use std::os::unix::process::CommandExt;
    let home = TestHome::new("fdlimit");
    storm(&home, 12, 150, || {
        let mut c = home.cmd();
        c.arg("run").arg("--").arg(fixture());
        // SAFETY: setrlimit is async-signal-safe; it lowers soft and hard
        // limits for the bridge and, inherited, for the daemon it starts.
        #[allow(unsafe_code)]
        unsafe {
            c.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 64,
                    rlim_max: 64,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Bridge::spawn(c)
    });
    let limits = std::fs::read_to_string(format!(
        "/proc/{}/limits",
        home.daemon_pid().expect("a daemon runs")
    ));
    if let Ok(limits) = limits {
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap_or("");
        assert!(
            line.split_whitespace().nth(3) == Some("64"),
            "the daemon ran under the limit: {line}"
        );
    }
}

#[test]
fn an_upstream_crash_fails_every_session_at_once_and_the_next_call_restarts_it() {
    let home = TestHome::new("crash");
    let (mut a, first) = home.client();
    let (mut b, _) = home.client();
    home.sleep_in_flight(&mut a, json!(2), 10000);
    let t = Instant::now();
    b.send(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "crash", "arguments": {}}}));
    let ra = a.response(&json!(2), Duration::from_secs(2));
    let rb = b.response(&json!(3), Duration::from_secs(2));
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "errors took {:?}",
        t.elapsed()
    );
    assert!(
        ra["error"]["message"].as_str().unwrap().contains("exited"),
        "{ra}"
    );
    assert!(rb.get("error").is_some(), "{rb}");
    let second = b.upstream_pid(json!(4));
    home.seen_upstreams.lock().unwrap().push(second);
    assert_ne!(first, second);
    assert_eq!(
        a.upstream_pid(json!(5)),
        second,
        "both sessions carry on with the new upstream"
    );
    assert_eq!(home.status()["upstreams"][0]["restarts"], json!(1));
}

#[test]
fn list_changed_reaches_every_session() {
    let home = TestHome::new("listchanged");
    let (mut a, _) = home.client();
    let (mut b, _) = home.client();
    a.call_text(json!(2), "list_changed", json!({}));
    for s in [&mut a, &mut b] {
        let got = wait_until(WAIT, || {
            if let Some(m) = s.recv(Duration::from_millis(50)) {
                s.backlog.push(m);
            }
            s.backlog
                .iter()
                .any(|m| m["method"] == json!("notifications/tools/list_changed"))
        });
        assert!(got, "a session missed list_changed");
    }
}

#[test]
fn identity_shares_across_terminals_but_not_across_secrets_or_isolation() {
    let home = TestHome::new("identity");
    let mut base = home.bridge_with(&[], &[("API_KEY", "one"), ("TERM_SESSION_ID", "tab1")]);
    let mut other_terminal =
        home.bridge_with(&[], &[("API_KEY", "one"), ("TERM_SESSION_ID", "tab2")]);
    let mut other_key = home.bridge_with(&[], &[("API_KEY", "two"), ("TERM_SESSION_ID", "tab1")]);
    let mut isolated = home.bridge_with(
        &["--isolated"],
        &[("API_KEY", "one"), ("TERM_SESSION_ID", "tab1")],
    );
    for b in [
        &mut base,
        &mut other_terminal,
        &mut other_key,
        &mut isolated,
    ] {
        b.initialize();
    }
    let p = [
        &mut base,
        &mut other_terminal,
        &mut other_key,
        &mut isolated,
    ]
    .map(|b| b.upstream_pid(json!(1)));
    home.seen_upstreams.lock().unwrap().extend(p);
    assert_eq!(p[0], p[1], "terminal variables must not split an upstream");
    assert_ne!(p[0], p[2], "a different secret must never share");
    assert_ne!(p[0], p[3], "--isolated gets its own upstream");
    assert_eq!(
        other_key.call_text(json!(2), "env", json!({"name": "API_KEY"})),
        "two"
    );
    assert_eq!(home.status()["upstreams"].as_array().unwrap().len(), 3);
    // The isolated upstream goes with its session.
    drop(isolated);
    assert!(
        wait_until(WAIT, || !pid_alive(p[3])),
        "isolated upstream outlived its session"
    );
}

/// A call that outlives MCPSHARE_REQUEST_TIMEOUT_SECS gets the timeout error
/// (code -32001) while the upstream is told to cancel it, and the session,
/// connection and upstream carry on.
#[test]
fn a_call_past_the_request_timeout_gets_an_error_and_is_cancelled() {
    let home = TestHome::new("reqtimeout");
    let (mut a, pid) = home.client_env(&[("MCPSHARE_REQUEST_TIMEOUT_SECS", "1")]);
    let t = Instant::now();
    a.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "sleep", "arguments": {"ms": 10000}}}));
    let r = a.response(&json!(2), WAIT);
    assert_eq!(r["error"]["code"], json!(-32001), "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{r}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t.elapsed()
    );
    // The daemon forgets the call (it sent the upstream a cancellation).
    assert!(wait_until(
        WAIT,
        || home.status()["upstreams"][0]["inflight"] == json!(0)
    ));
    assert_eq!(
        a.call_text(json!(3), "echo", json!({"text": "after"})),
        "after"
    );
    assert_eq!(
        a.upstream_pid(json!(4)),
        pid,
        "the same upstream carries on"
    );
}
