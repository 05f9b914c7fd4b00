//! One daemon per home, whatever the race; stale and foreign manifests.

use crate::common::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// Launch `n` bridges at once, initialize and call each; return their
/// upstream pids and whether each printed "starting the mcpshare daemon".
fn wave(home: &TestHome, n: usize) -> (Vec<u32>, usize) {
    let mut bridges: Vec<Bridge> = (0..n).map(|_| home.bridge(&[])).collect();
    for b in bridges.iter_mut() {
        b.send(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}));
    }
    let mut pids = Vec::new();
    for (i, b) in bridges.iter_mut().enumerate() {
        let r = b.response(&json!(0), WAIT);
        assert!(r.get("result").is_some(), "bridge {i} initialize: {r}");
        b.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        assert_eq!(
            b.call_text(json!(1), "echo", json!({"text": format!("b{i}")})),
            format!("b{i}")
        );
        pids.push(b.upstream_pid(json!(2)));
    }
    let spawned = bridges
        .iter()
        .filter(|b| {
            b.stderr
                .lock()
                .unwrap()
                .contains("starting the mcpshare daemon")
        })
        .count();
    (pids, spawned)
}

#[test]
fn cold_start_race_elects_one_daemon_and_one_upstream() {
    let home = TestHome::new("cold");
    let n = 16;
    let (pids, spawned) = wave(&home, n);
    home.seen_upstreams.lock().unwrap().push(pids[0]);
    let upstreams = home.status()["upstreams"].as_array().unwrap().len();
    let daemons = home.daemons_started();
    println!(
        "cold ok={} n={n} daemons={daemons} upstreams={upstreams} spawned={spawned}",
        pids.len()
    );
    assert_eq!(daemons, 1, "daemon log:\n{}", home.log());
    assert_eq!(spawned, 1);
    assert_eq!(upstreams, 1);
    assert!(
        pids.iter().all(|p| *p == pids[0]),
        "upstream pids differ: {pids:?}"
    );

    // A warm wave spawns nothing new.
    let daemon = home.daemon_pid();
    let (warm, spawned) = wave(&home, n);
    println!(
        "warm ok={} n={n} daemons={} spawned={spawned}",
        warm.len(),
        home.daemons_started()
    );
    assert_eq!(spawned, 0);
    assert_eq!(home.daemons_started(), 1);
    assert_eq!(home.daemon_pid(), daemon);
    assert!(warm.iter().all(|p| *p == pids[0]));
}

#[test]
fn stale_and_corrupt_manifests_read_as_none() {
    let home = TestHome::new("stale");
    // A manifest naming a dead pid, with no lock held.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let stale = json!({"schema": 1, "version": "0.1.0", "protocol": 1, "pid": dead_pid, "start_time": 1,
        "port": 1, "url": "http://127.0.0.1:1", "token": "ab".repeat(32), "started_at": 0, "heartbeat_at": 0, "exe": "x"});
    std::fs::write(home.dir.join("daemon.json"), stale.to_string()).unwrap();
    let mut b = home.bridge(&[]);
    b.initialize();
    assert_eq!(b.call_text(json!(1), "echo", json!({"text": "a"})), "a");
    assert_ne!(home.daemon_pid(), Some(dead_pid));
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(b.upstream_pid(json!(2)));
    drop(b);
    assert!(home.mcpshare(&["stop"]).status.success());

    // A corrupt manifest.
    std::fs::write(home.dir.join("daemon.json"), b"{\"schema\": 1, \"pid\": ").unwrap();
    let mut b = home.bridge(&[]);
    b.initialize();
    assert_eq!(b.call_text(json!(1), "echo", json!({"text": "b"})), "b");
}

#[test]
fn a_manifest_naming_a_live_unrelated_process_never_gets_it_killed() {
    let home = TestHome::new("foreign");
    let mut victim = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let vpid = victim.id();
    let forged = json!({"schema": 1, "version": "0.1.0", "protocol": 1, "pid": vpid, "start_time": 0,
        "port": 9, "url": "http://127.0.0.1:9", "token": "cd".repeat(32), "started_at": 0, "heartbeat_at": 0, "exe": "x"});
    std::fs::write(home.dir.join("daemon.json"), forged.to_string()).unwrap();
    // No lock is held, so the manifest is not trusted: status sees no daemon.
    let st = home.status();
    assert!(st["daemon"].is_null(), "{st}");
    let mut b = home.bridge(&[]);
    b.initialize();
    assert_eq!(b.call_text(json!(1), "echo", json!({"text": "c"})), "c");
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(b.upstream_pid(json!(2)));
    drop(b);
    let out = home.mcpshare(&["stop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        pid_alive(vpid),
        "an unrelated process named in a manifest was killed"
    );
    victim.kill().unwrap();
    victim.wait().unwrap();
}

#[test]
fn kill_9_of_the_daemon_under_load_errors_fast_and_recovers() {
    let home = TestHome::new("kill9");
    let mut bridges: Vec<Bridge> = (0..8).map(|_| home.bridge(&[])).collect();
    for b in bridges.iter_mut() {
        b.initialize();
    }
    let old_upstream = bridges[0].upstream_pid(json!("pid"));
    home.seen_upstreams.lock().unwrap().push(old_upstream);
    let old_daemon = home.daemon_pid().unwrap();
    for (i, b) in bridges.iter_mut().enumerate() {
        b.send(
            &json!({"jsonrpc": "2.0", "id": 100 + i, "method": "tools/call",
            "params": {"name": "sleep", "arguments": {"ms": 5000}}}),
        );
    }
    // Kill only once the daemon reports all eight calls in flight.
    assert!(wait_until(
        WAIT,
        || home.status()["upstreams"][0]["inflight"] == json!(8)
    ));
    let killed_at = Instant::now();
    signal(old_daemon, libc::SIGKILL);
    for (i, b) in bridges.iter_mut().enumerate() {
        let r = b.response(&json!(100 + i), Duration::from_secs(3));
        assert!(
            r.get("error").is_some(),
            "in-flight call {i} did not fail: {r}"
        );
    }
    let all_errored = killed_at.elapsed();
    println!("kill9: all 8 in-flight calls errored after {all_errored:?}");
    assert!(
        all_errored < Duration::from_secs(1),
        "in-flight errors took {all_errored:?}"
    );
    // The next calls succeed on a newly elected daemon.
    for (i, b) in bridges.iter_mut().enumerate() {
        assert_eq!(
            b.call_text(json!(200 + i), "echo", json!({"text": "again"})),
            "again"
        );
    }
    let recovered = killed_at.elapsed();
    println!("kill9: all 8 bridges served again after {recovered:?}");
    assert!(
        recovered < Duration::from_secs(2),
        "recovery took {recovered:?}"
    );
    assert!(
        wait_until(Duration::from_secs(2), || !pid_alive(old_upstream)),
        "upstream of the dead daemon remains"
    );
    assert_ne!(home.daemon_pid(), Some(old_daemon));
    assert_eq!(home.daemons_started(), 2, "{}", home.log());
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(bridges[0].upstream_pid(json!("pid2")));
}

#[test]
fn stop_returns_once_the_lock_is_free_and_the_upstream_is_gone() {
    let home = TestHome::new("stop");
    let mut b = home.bridge(&[]);
    b.initialize();
    let up = b.upstream_pid(json!(1));
    home.seen_upstreams.lock().unwrap().push(up);
    let daemon = home.daemon_pid().unwrap();
    let out = home.mcpshare(&["stop"]);
    assert!(out.status.success());
    let lock = std::fs::File::open(home.dir.join("daemon.lock")).unwrap();
    lock.try_lock().expect("lock free after stop");
    drop(lock);
    assert!(
        !home.dir.join("daemon.json").exists(),
        "the daemon removes its manifest"
    );
    assert!(wait_until(Duration::from_secs(2), || !pid_alive(daemon)));
    assert!(!pid_alive(up), "upstream survived stop");
    let out = home.mcpshare(&["stop"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("no daemon running"));
}
