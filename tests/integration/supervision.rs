//! The daemon supervises upstreams better than a client would: restarts
//! with backoff, a crash-loop stop, health pings, idle stop, logs.

use crate::common::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn group_gone(pgid: u32) -> bool {
    // SAFETY: kill with signal 0 on a negative pid only probes the group.
    #[allow(unsafe_code)]
    let r = unsafe { libc::kill(-(pgid as i32), 0) };
    r == -1
}

#[test]
fn kill_9_of_the_upstream_mid_call_errors_restarts_and_announces_list_changed() {
    let home = TestHome::new("upkill");
    let (mut a, first) = home.client();
    let (mut b, _) = home.client();
    home.sleep_in_flight(&mut a, json!(2), 10000);
    let t = Instant::now();
    signal(first, libc::SIGKILL);
    let r = a.response(&json!(2), Duration::from_secs(2));
    assert!(
        t.elapsed() < Duration::from_secs(1) && r.get("error").is_some(),
        "{r} after {:?}",
        t.elapsed()
    );
    // Restarted on its own (no request needed), and every session is told.
    for s in [&mut a, &mut b] {
        let seen = s.wait_for(WAIT, |m| {
            m["method"] == json!("notifications/tools/list_changed")
        });
        assert!(
            seen.is_some(),
            "a session missed list_changed after the restart"
        );
    }
    let st = home.status();
    assert_eq!(st["upstreams"][0]["state"], json!("running"), "{st}");
    let second = st["upstreams"][0]["pid"].as_u64().unwrap() as u32;
    home.seen_upstreams.lock().unwrap().push(second);
    assert_ne!(second, first);
    assert_eq!(b.upstream_pid(json!(3)), second);
    assert!(
        wait_until(WAIT, || group_gone(first)),
        "the killed upstream's process group remains"
    );
}

#[test]
fn a_crash_loop_ends_in_crashed_until_restart() {
    let home = TestHome::new("crashloop");
    let mut a = home.bridge(&[]);
    a.initialize();
    let mut pids = Vec::new();
    for i in 0..5 {
        pids.push(a.upstream_pid(json!(format!("pid{i}"))));
        let r = a.call(json!(i), "crash", json!({"code": 3}));
        assert!(r.get("error").is_some(), "{r}");
    }
    home.seen_upstreams.lock().unwrap().extend(&pids);
    let st = home.status();
    let id = st["upstreams"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(st["upstreams"][0]["state"], json!("crashed"), "{st}");
    let text = String::from_utf8_lossy(&home.mcpshare(&["status"]).stdout).to_string();
    assert!(text.contains("crashed"), "{text}");
    let r = a.call(json!(10), "echo", json!({"text": "x"}));
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("mcpshare logs {id}")),
        "{r}"
    );

    let out = home.mcpshare(&["restart", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        a.call_text(json!(11), "echo", json!({"text": "back"})),
        "back"
    );
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(a.upstream_pid(json!(12)));
    assert_eq!(home.status()["upstreams"][0]["state"], json!("running"));
}

#[test]
fn a_hung_upstream_is_killed_and_restarted() {
    let home = TestHome::new("uphang");
    let (mut a, first) = home.client_env(&[("MCPSHARE_PING_EVERY_MS", "200")]);
    a.call_text(json!(2), "hang", json!({}));
    assert!(
        wait_until(WAIT, || !pid_alive(first)),
        "hung upstream was not killed"
    );
    assert!(wait_until(WAIT, || home.status()["upstreams"][0]["state"]
        == json!("running")));
    let second = a.upstream_pid(json!(3));
    home.seen_upstreams.lock().unwrap().push(second);
    assert_ne!(first, second);
    assert!(
        home.log().contains("does not answer pings"),
        "{}",
        home.log()
    );
}

#[test]
fn idle_upstreams_and_an_idle_daemon_stop_by_themselves() {
    let home = TestHome::new("idle");
    let env = [
        ("MCPSHARE_UPSTREAM_IDLE_MS", "300"),
        ("MCPSHARE_DAEMON_IDLE_SECS", "1"),
    ];
    let mut a = home.bridge_with(&[], &env);
    a.initialize();
    let up = a.upstream_pid(json!(1));
    home.seen_upstreams.lock().unwrap().push(up);
    let daemon = home.daemon_pid().unwrap();
    drop(a);
    assert!(
        wait_until(WAIT, || !pid_alive(up)),
        "idle upstream kept running"
    );
    assert!(
        wait_until(WAIT, || group_gone(up)),
        "the idle upstream's process group remains"
    );
    assert!(
        wait_until(WAIT, || !pid_alive(daemon)),
        "idle daemon kept running"
    );
    assert!(
        home.log()
            .contains("idle for 1 s with no upstream and no session"),
        "{}",
        home.log()
    );
    assert!(!home.dir.join("daemon.json").exists());
}

#[test]
fn logs_show_the_upstreams_stderr_and_follow_a_restart() {
    let home = TestHome::new("logs");
    let (mut a, first) = home.client_env(&[("FIXTURE_STDERR", "5")]);
    let id = home.status()["upstreams"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(wait_until(WAIT, || {
        let out = home.mcpshare(&["logs", &id, "-n", "2"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // Each line is stamped with its time: "2026-11-29T22:48:13.551Z text".
        let said: Vec<&str> = text.lines().filter_map(|l| l.get(25..)).collect();
        said == ["fixture stderr line 3", "fixture stderr line 4"]
    }));

    // `-n 1`: the follower prints the newest line at once, so it has its
    // place in the log before the restart writes more.
    let mut follow = home.cmd();
    follow
        .args(["logs", &id, "-n", "1", "-f"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut follower = Bridge::spawn(follow);
    let newest = follower.recv_line(WAIT);
    assert!(
        newest
            .as_deref()
            .is_some_and(|l| l.ends_with("fixture stderr line 4")),
        "{newest:?}"
    );
    let out = home.mcpshare(&["restart", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = a.upstream_pid(json!(2));
    home.seen_upstreams.lock().unwrap().push(second);
    assert_ne!(first, second);
    let mut seen = String::new();
    let ok = wait_until(WAIT, || {
        if let Some(l) = follower.recv_line(Duration::from_millis(50)) {
            seen.push_str(&l);
            seen.push('\n');
        }
        seen.contains(&format!("fixture pid {second} started"))
    });
    assert!(ok, "logs -f did not show the restarted upstream: {seen:?}");
    signal(follower.pid(), libc::SIGTERM);

    // An unknown upstream is a clear error; a bad id is a usage error.
    let out = home.mcpshare(&["logs", "nope-0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no upstream nope-0"));
    assert_eq!(home.mcpshare(&["logs", "../etc"]).status.code(), Some(2));
}

#[test]
fn a_slow_starting_upstream_keeps_every_first_client_waiting_not_failing() {
    let home = TestHome::new("slow");
    let env = [("FIXTURE_STARTUP_DELAY_MS", "1500")];
    let mut bridges: Vec<Bridge> = (0..4).map(|_| home.bridge_with(&[], &env)).collect();
    for b in bridges.iter_mut() {
        b.send(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}));
    }
    let mut pids = Vec::new();
    for b in bridges.iter_mut() {
        assert!(b.response(&json!(0), WAIT).get("result").is_some());
        b.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        pids.push(b.upstream_pid(json!(1)));
    }
    home.seen_upstreams.lock().unwrap().push(pids[0]);
    assert!(pids.iter().all(|p| *p == pids[0]));
}
