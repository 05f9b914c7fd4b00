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
    let dead_pid = dead_pid();
    home.write_manifest(&manifest_naming(dead_pid, 1, 1));
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
    home.write_manifest(&manifest_naming(vpid, 0, 9));
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
    let (_b, up) = home.client();
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

#[test]
fn sigterm_stops_the_daemon_cleanly() {
    let home = TestHome::new("sigterm");
    let (_b, up) = home.client();
    let daemon = home.daemon_pid().unwrap();
    signal(daemon, libc::SIGTERM);
    assert!(
        wait_until(WAIT, || !pid_alive(daemon)),
        "daemon ignored SIGTERM"
    );
    assert!(!pid_alive(up), "upstream outlived its daemon");
    assert!(
        !home.dir.join("daemon.json").exists(),
        "manifest left behind"
    );
    let lock = std::fs::File::open(home.dir.join("daemon.lock")).unwrap();
    lock.try_lock().expect("lock free");
    assert!(
        home.log().contains("daemon stopping: signal 15"),
        "{}",
        home.log()
    );
}

#[test]
fn a_daemon_that_dies_during_start_up_is_reported_with_its_log() {
    let home = TestHome::new("bootfail");
    // The daemon cannot write its manifest over a directory, so it fails to boot.
    std::fs::create_dir(home.dir.join("daemon.json")).unwrap();
    let mut b = home.bridge(&[]);
    let msg = b.initialize_error();
    assert!(msg.contains("exited during start-up"), "{msg}");
    assert!(
        msg.contains("daemon.json"),
        "the log tail names the cause: {msg}"
    );
    assert!(
        msg.contains("mcpshare daemon"),
        "a hint says what to run: {msg}"
    );
}

#[test]
fn a_newer_client_takes_over_an_older_daemon_and_old_clients_follow() {
    let home = TestHome::new("takeover");
    let mut old = home.bridge_with(&[], &[("MCPSHARE_TEST_REPORTED_VERSION", "0.0.1")]);
    old.initialize();
    let old_daemon = home.daemon_pid().unwrap();
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(old.upstream_pid(json!(1)));
    assert_eq!(home.status()["daemon"]["version"], json!("0.0.1"));

    let (_new, _) = home.client();
    let st = home.status();
    assert_eq!(
        st["daemon"]["version"],
        json!(env!("CARGO_PKG_VERSION")),
        "{st}"
    );
    assert_eq!(home.daemons_started(), 2);
    assert!(wait_until(WAIT, || !pid_alive(old_daemon)));
    assert!(
        home.log().contains(&format!(
            "handed over to mcpshare {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        home.log()
    );

    // The old client re-attaches to the newer daemon; it never replaces it back.
    let mut answered = None;
    assert!(wait_until(WAIT, || {
        let r = old.call(json!("again"), "echo", json!({"text": "old"}));
        answered = text_of(&r);
        answered.is_some()
    }));
    assert_eq!(answered.as_deref(), Some("old"));
    assert_eq!(home.daemons_started(), 2);

    // An equal version never replaces.
    let mut same = home.bridge(&[]);
    same.initialize();
    assert_eq!(home.daemons_started(), 2);
}

/// A stand-in "daemon": this test process holds the lock and publishes a
/// manifest pointing at a listener it controls, which answers /health with
/// the given protocol, or never answers at all.
struct FakeDaemon {
    _lock: std::fs::File,
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeDaemon {
    fn start(home: &TestHome, answer_health: Option<u32>) -> FakeDaemon {
        use std::io::{BufRead, Write};
        let lock = home.hold_daemon_lock();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = std::process::id();
        let start: u64 = mcpshare::platform::start_time(me).unwrap();
        let mut m = manifest_naming(me, start, port);
        m["version"] = json!("9.0.0");
        home.write_manifest(&m);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let Some(protocol) = answer_health else {
                    held.push(conn); // accepted, never answered
                    continue;
                };
                let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let body =
                    json!({"status": "ok", "pid": me, "version": "9.0.0", "protocol": protocol})
                        .to_string();
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeDaemon {
            _lock: lock,
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn an_incompatible_daemon_is_refused_with_what_to_run() {
    let home = TestHome::new("incompat");
    let _fake = FakeDaemon::start(&home, Some(99));
    let out = home.mcpshare(&["status"]);
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("control protocol 99") && err.contains("hint: stop it with 'mcpshare stop'"),
        "{err}"
    );
    let mut b = home.bridge(&[]);
    let msg = b.initialize_error();
    assert!(msg.contains("control protocol 99"), "{msg}");
}

#[test]
fn a_hung_daemon_fails_clients_fast_naming_its_pid() {
    let home = TestHome::new("hung");
    let _fake = FakeDaemon::start(&home, None);
    let t = Instant::now();
    let mut b = home.bridge(&[]);
    let msg = b.initialize_error();
    println!("hung: client failed after {:?}", t.elapsed());
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t.elapsed()
    );
    assert!(
        msg.contains(&format!("pid {}", std::process::id())) && msg.contains("not responding"),
        "{msg}"
    );
}
