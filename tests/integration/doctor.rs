//! The process registry and `mcpshare doctor`.

use crate::common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn processes(home: &TestHome) -> Vec<Value> {
    let out = home.mcpshare(&["doctor", "processes", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn record_of(all: &[Value], pid: u32) -> Option<Value> {
    all.iter()
        .find(|r| r["record"]["pid"] == json!(pid))
        .cloned()
}

#[test]
fn records_appear_and_disappear_with_their_processes() {
    let home = TestHome::new("records");
    let (b, up) = home.client();
    let daemon = home.daemon_pid().unwrap();
    let all = processes(&home);
    let roles: Vec<(u32, String)> = all
        .iter()
        .map(|r| {
            (
                r["record"]["pid"].as_u64().unwrap() as u32,
                r["record"]["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(roles.contains(&(b.pid(), "bridge".into())), "{roles:?}");
    assert!(roles.contains(&(daemon, "daemon".into())), "{roles:?}");
    assert!(roles.contains(&(up, "upstream".into())), "{roles:?}");
    let bridge = record_of(&all, b.pid()).unwrap();
    assert_eq!(bridge["alive"], json!(true));
    assert_eq!(bridge["start_time_match"], json!(true));
    assert_eq!(bridge["executable_match"], json!(true));
    assert_eq!(
        bridge["record"]["parent_pid_at_start"],
        json!(std::process::id())
    );
    assert!(bridge["record"]["session"].is_string() && bridge["record"]["upstream"].is_string());
    assert!(
        record_of(&all, daemon).unwrap()["child_pids"]
            .as_array()
            .unwrap()
            .contains(&json!(up))
    );

    // The key=value form names the exact pid with parent and group fields.
    let text = String::from_utf8_lossy(&home.mcpshare(&["doctor", "processes"]).stdout).to_string();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("pid={} ", b.pid())))
        .unwrap()
        .to_string();
    for key in [
        "alive=yes",
        "role=bridge",
        "transport=stdio",
        &format!("parent_pid_at_start={}", std::process::id()),
        "process_group_id=",
        "stale_client=no",
    ] {
        assert!(line.contains(key), "{key} missing: {line}");
    }

    // The bridge's record goes with the bridge; the daemon's and the
    // upstream's stay while they run.
    let bridge = b.pid();
    drop(b);
    assert!(
        wait_until(WAIT, || record_of(&processes(&home), bridge).is_none()),
        "the record of bridge pid {bridge} outlived it"
    );
    let all = processes(&home);
    assert!(
        !all.iter().any(|r| r["record"]["role"] == json!("bridge")),
        "{all:?}"
    );
    for pid in [daemon, up] {
        assert_eq!(record_of(&all, pid).unwrap()["alive"], json!(true), "{pid}");
    }
}

#[test]
fn a_killed_bridge_leaves_a_dead_record_that_cleanup_removes() {
    let home = TestHome::new("cleanup");
    let mut dead = home.bridge(&[]);
    let mut live = home.bridge(&[]);
    dead.initialize();
    live.initialize();
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(live.upstream_pid(json!(1)));
    let dead_pid = dead.pid();
    signal(dead_pid, libc::SIGKILL);
    assert!(wait_until(WAIT, || !pid_alive(dead_pid)));
    let all = processes(&home);
    assert_eq!(record_of(&all, dead_pid).unwrap()["alive"], json!(false));
    let text = String::from_utf8_lossy(&home.mcpshare(&["doctor", "processes"]).stdout).to_string();
    assert!(
        text.contains("stale_record_cleanup=")
            && text.contains("doctor processes --cleanup-stale-records"),
        "{text}"
    );
    let out = home.mcpshare(&["doctor"]);
    let summary = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        summary.contains(&format!(
            "stale_records: 1 record(s) of dead processes: pid {dead_pid}"
        )),
        "{summary}"
    );

    let out = home.mcpshare(&["doctor", "processes", "--cleanup-stale-records"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("removed stale record"));
    let all = processes(&home);
    assert!(record_of(&all, dead_pid).is_none());
    assert_eq!(
        record_of(&all, live.pid()).unwrap()["alive"],
        json!(true),
        "a live record is never removed"
    );
    assert!(pid_alive(live.pid()));
}

#[test]
fn a_reused_pid_reads_as_dead() {
    let home = TestHome::new("reused");
    std::fs::create_dir_all(home.dir.join("processes")).unwrap();
    let me = std::process::id();
    let start: u64 = mcpshare::platform::start_time(std::process::id()).unwrap();
    let forged = json!({"pid": me, "start_time": start + 1, "role": "bridge", "transport": "stdio", "parent_pid_at_start": 1});
    std::fs::write(
        home.dir.join(format!("processes/{me}.json")),
        forged.to_string(),
    )
    .unwrap();
    std::fs::write(home.dir.join("processes/999999999.json"), b"{corrupt").unwrap();
    let out = home.mcpshare(&["doctor", "processes", "--json"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipping corrupt record"));
    let all: Vec<Value> = serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    let r = record_of(&all, me).unwrap();
    assert_eq!(r["alive"], json!(false));
    assert_eq!(r["start_time_match"], json!(false));
    // Cleanup removes it, and the test process is of course untouched.
    assert!(
        home.mcpshare(&["doctor", "processes", "--cleanup-stale-records"])
            .status
            .success()
    );
    assert!(record_of(&processes(&home), me).is_none());
    assert!(
        home.dir.join("processes/999999999.json").exists(),
        "corrupt records are reported, not removed"
    );
}

#[test]
fn a_bridge_whose_client_died_is_a_stale_client_until_it_exits() {
    let home = TestHome::new("staleclient");
    let script = format!(
        "exec 3<&0; MCPSHARE_WATCHDOG_MS=3000 '{BIN}' run -- '{}' <&3 3<&- & echo $!; wait",
        fixture().display()
    );
    let mut c = std::process::Command::new("sh");
    c.args(["-c", &script]).env("MCPSHARE_HOME", &home.dir);
    let mut sh = Bridge::spawn(c);
    let bridge: u32 = sh
        .recv_line(WAIT)
        .expect("the bridge pid")
        .trim()
        .parse()
        .unwrap();
    sh.send(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}));
    assert!(sh.response(&json!(0), WAIT).get("result").is_some());
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(home.status()["upstreams"][0]["pid"].as_u64().unwrap() as u32);
    let killed = Instant::now();
    signal(sh.pid(), libc::SIGKILL);
    let _ = sh.wait_exit(WAIT);
    let r = record_of(&processes(&home), bridge).unwrap();
    assert_eq!(r["stale_client"], json!(true), "{r}");
    let text = String::from_utf8_lossy(&home.mcpshare(&["doctor", "processes"]).stdout).to_string();
    assert!(
        text.contains(&format!("exact_terminate=kill -TERM {bridge}")),
        "{text}"
    );
    let out = home.mcpshare(&["doctor"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("fix: kill -TERM {bridge}")));
    // The watchdog ends it without help, and its record goes with it.
    assert!(
        wait_until(Duration::from_secs(10), || !pid_alive(bridge)),
        "the orphaned bridge kept running"
    );
    println!(
        "stale client exited {:?} after its parent died",
        killed.elapsed()
    );
    assert!(record_of(&processes(&home), bridge).is_none());
}

#[test]
fn a_stopped_daemon_fails_clients_fast_and_stop_force_recovers() {
    let home = TestHome::new("sigstop");
    let (_b, up) = home.client();
    let daemon = home.daemon_pid().unwrap();
    signal(daemon, libc::SIGSTOP);

    let t = Instant::now();
    let mut c = home.bridge(&[]);
    let msg = c.initialize_error();
    println!("sigstop: a new client failed after {:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(8));
    assert!(
        msg.contains(&format!("daemon pid {daemon}")) && msg.contains("mcpshare stop --force"),
        "{msg}"
    );

    let out = home.mcpshare(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("error   daemon_health") && text.contains("stop --force"),
        "{text}"
    );

    let out = home.mcpshare(&["stop", "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!pid_alive(daemon));
    assert!(
        wait_until(WAIT, || !pid_alive(up)),
        "the stopped daemon's upstream survived"
    );
    // A fresh client is served by a fresh daemon.
    let (_d, _) = home.client();
    assert_ne!(home.daemon_pid(), Some(daemon));
}

#[test]
fn stop_force_never_signals_an_unconfirmed_pid() {
    let home = TestHome::new("forcecheck");
    let mut victim = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let vpid = victim.id();
    let lock = home.hold_daemon_lock();
    // A manifest naming a live process that is not an mcpshare daemon.
    let mut m = manifest_naming(vpid, 0, 9);
    m["exe"] = json!(BIN);
    home.write_manifest(&m);
    let out = home.mcpshare(&["stop", "--force"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing is signalled"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(pid_alive(vpid));
    drop(lock);
    victim.kill().unwrap();
    victim.wait().unwrap();
}

#[test]
fn doctor_json_shape_exit_status_and_crashed_and_orphaned_upstreams() {
    let home = TestHome::new("doctorjson");
    let (mut b, _) = home.client();
    let out = home.mcpshare(&["doctor", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let checks: Vec<Value> = serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    for c in &checks {
        assert!(
            c["check"].is_string() && c["message"].is_string() && c.get("fix").is_some(),
            "{c}"
        );
        assert!(
            ["ok", "info", "warning", "error"].contains(&c["level"].as_str().unwrap()),
            "{c}"
        );
    }
    let names: Vec<&str> = checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    for n in [
        "home",
        "filesystem",
        "daemon_lock",
        "manifest",
        "daemon_health",
        "version",
        "stale_records",
        "stale_clients",
        "orphaned_upstreams",
        "crashed_upstreams",
    ] {
        assert!(names.contains(&n), "missing check {n}: {names:?}");
    }

    // A crash loop makes doctor fail and name the fix.
    for i in 0..5 {
        home.seen_upstreams
            .lock()
            .unwrap()
            .push(b.upstream_pid(json!(format!("p{i}"))));
        let _ = b.call(json!(i), "crash", json!({}));
    }
    let id = home.status()["upstreams"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = home.mcpshare(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("restart {id}")));

    // An upstream record whose daemon is gone is an orphan.
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let gone_pid = dead_pid();
    let start: u64 = mcpshare::platform::start_time(sleeper.id()).unwrap();
    let rec = json!({"pid": sleeper.id(), "start_time": start, "role": "upstream", "transport": "stdio",
        "parent_pid_at_start": gone_pid, "process_group_id": sleeper.id(), "upstream": "forged-0"});
    std::fs::write(
        home.dir.join(format!("processes/{}.json", sleeper.id())),
        rec.to_string(),
    )
    .unwrap();
    let text = String::from_utf8_lossy(&home.mcpshare(&["doctor"]).stdout).to_string();
    assert!(
        text.contains("orphaned_upstreams")
            && text.contains(&format!("fix: kill -TERM -{}", sleeper.id())),
        "{text}"
    );
    assert!(pid_alive(sleeper.id()), "doctor never signals");
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}
