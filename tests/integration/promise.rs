//! Every call is answered and nothing freezes: stops and signals answer
//! calls in flight, a child's exit is seen even when a grandchild keeps
//! its stdout open, and neither a deaf upstream nor a client that stops
//! reading can freeze the daemon.

use crate::common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::time::{Duration, Instant};

/// The answer to `id` is an error that arrived within `within` of `since`.
fn assert_error_within(r: &Value, since: Instant, within: Duration, what: &str) {
    assert!(
        r.get("error").is_some() && since.elapsed() < within,
        "{what}: {r} after {:?}",
        since.elapsed()
    );
}

/// The error is the daemon's own, naming why it stops (not the bridge's
/// stand-in for a stream that ended without an answer).
fn assert_daemon_stopping(r: &Value, why: &str) {
    let text = r["error"]["message"].as_str().unwrap_or("");
    assert!(
        text.starts_with("request not completed: mcpshare daemon stopping") && text.contains(why),
        "{r}"
    );
}

#[test]
fn stop_answers_every_call_in_flight() {
    let home = TestHome::new("stopanswers");
    let (mut a, _) = home.client();
    let (mut b, _) = home.client();
    home.sleep_in_flight(&mut a, json!(2), 30_000);
    b.send(&json!({"jsonrpc": "2.0", "id": "b", "method": "tools/call",
        "params": {"name": "sleep", "arguments": {"ms": 30_000}}}));
    assert!(wait_until(
        WAIT,
        || home.status()["upstreams"][0]["inflight"] == json!(2)
    ));
    let t = Instant::now();
    let out = home.mcpshare(&["stop"]);
    assert!(out.status.success(), "{out:?}");
    let ra = a.response(&json!(2), Duration::from_secs(5));
    assert_error_within(&ra, t, Duration::from_secs(3), "first session");
    assert_daemon_stopping(&ra, "mcpshare stop");
    let rb = b.response(&json!("b"), Duration::from_secs(5));
    assert_error_within(&rb, t, Duration::from_secs(3), "second session");
    assert_daemon_stopping(&rb, "mcpshare stop");
}

#[test]
fn every_termination_signal_answers_calls_in_flight() {
    let home = TestHome::new("signalanswers");
    // SIGHUP reloads the config instead (see config::sighup_reloads_the_config).
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let (mut a, _) = home.client();
        home.sleep_in_flight(&mut a, json!(7), 30_000);
        let daemon = home.daemon_pid().unwrap();
        let t = Instant::now();
        signal(daemon, sig);
        let r = a.response(&json!(7), Duration::from_secs(5));
        assert_error_within(&r, t, Duration::from_secs(1), &format!("signal {sig}"));
        assert_daemon_stopping(&r, &format!("signal {sig}"));
        assert!(
            wait_until(WAIT, || !pid_alive(daemon)),
            "daemon {daemon} outlived signal {sig}"
        );
    }
}

/// `sh -c 'setsid sleep 60 & exec fixture'`: the sleep keeps the upstream's
/// stdout open after the fixture exits. Its pid goes to `pidfile`.
fn wrapped_bridge(home: &TestHome, pidfile: &std::path::Path) -> Bridge {
    let script = format!(
        "setsid sleep 60 </dev/null 2>/dev/null & echo $! > '{}'; exec '{}'",
        pidfile.display(),
        fixture().display()
    );
    let mut c = home.cmd();
    c.args(["run", "--", "sh", "-c", &script]);
    Bridge::spawn(c)
}

/// Stop the wrapper's detached sleep, by the pid it wrote.
fn stop_sleeper(pidfile: &std::path::Path) {
    let Some(pid) = std::fs::read_to_string(pidfile)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    else {
        return;
    };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() == "sleep" {
        signal(pid, libc::SIGKILL);
    }
}

#[test]
fn an_exit_is_seen_while_a_grandchild_holds_stdout() {
    let home = TestHome::new("grandchild");
    let pidfile = home.dir.join("sleeper.pid");
    let mut a = wrapped_bridge(&home, &pidfile);
    a.initialize();
    let first = a.upstream_pid(json!("p1"));
    home.seen_upstreams.lock().unwrap().push(first);
    // A crash: the call that caused it is answered at once.
    let t = Instant::now();
    let r = a.call(json!(2), "crash", json!({"code": 3}));
    assert_error_within(&r, t, Duration::from_secs(2), "crash");
    stop_sleeper(&pidfile);
    // A restart with a call in flight: the call is answered at once.
    let second = a.upstream_pid(json!("p2"));
    home.seen_upstreams.lock().unwrap().push(second);
    home.sleep_in_flight(&mut a, json!(3), 30_000);
    let id = home.status()["upstreams"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = Instant::now();
    let restart = std::thread::spawn({
        let mut c = home.cmd();
        c.args(["restart", &id]).stdin(std::process::Stdio::null());
        move || run_bounded(c, WAIT)
    });
    let r = a.response(&json!(3), Duration::from_secs(5));
    assert_error_within(&r, t, Duration::from_secs(2), "restart");
    assert!(restart.join().unwrap().status.success());
    stop_sleeper(&pidfile);
    let third = a.upstream_pid(json!("p3"));
    home.seen_upstreams.lock().unwrap().push(third);
    assert!(third != second && second != first);
    stop_sleeper(&pidfile);
}

#[test]
fn an_answer_written_just_before_the_exit_reaches_its_caller() {
    let home = TestHome::new("lastwords");
    let (mut a, _) = home.client();
    // A large answer takes the daemon a while to read and parse; the exit
    // right after it is seen at once. The answer wins, every time.
    for (n, bytes) in [(1u64, 100u64), (2, 1_000_000), (3, 4_000_000)] {
        let r = a.call(json!(n), "crash", json!({"code": 0, "answer_bytes": bytes}));
        let text = text_of(&r).unwrap_or_else(|| {
            panic!(
                "answer of {bytes} bytes lost: {}",
                &r.to_string()[..r.to_string().len().min(300)]
            )
        });
        assert_eq!(text.len() as u64, bytes);
        // The next call goes to a new child only once this exit was seen
        // (sent before, it would meet the exiting child and fail, rightly).
        assert!(
            wait_until(WAIT, || home
                .log()
                .matches("exited (exit status: 0)")
                .count()
                == n as usize),
            "exit {n} not seen"
        );
    }
}

#[test]
fn a_deaf_upstream_is_restarted_and_freezes_nothing() {
    let home = TestHome::new("deaf");
    let (mut a, deaf) = home.client_env(&[("MCPSHARE_PING_EVERY_MS", "300")]);
    let (mut b, _) = home.client();
    assert_eq!(a.call_text(json!(2), "deaf", json!({})), "deaf");
    // Far more than a pipe holds: the daemon's write to its stdin blocks.
    let big = "y".repeat(512 * 1024);
    let t = Instant::now();
    a.send(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": big}}}));
    // Another session's call, a status and the health pings go on; the
    // missed pings restart the deaf upstream, and the calls are answered.
    b.send(&json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hi"}}}));
    let st = home.status();
    assert!(st["upstreams"].is_array(), "{st}");
    let r = a.response(&json!(3), WAIT);
    assert_error_within(&r, t, WAIT, "the call to the deaf upstream");
    let r = b.response(&json!(4), WAIT);
    assert!(
        r.get("error").is_some() || text_of(&r).as_deref() == Some("hi"),
        "{r}"
    );
    let fresh = b.upstream_pid(json!(5));
    home.seen_upstreams.lock().unwrap().push(fresh);
    assert_ne!(fresh, deaf);
    // And a stop with the fresh one deaf completes within its grace.
    assert_eq!(b.call_text(json!(6), "deaf", json!({})), "deaf");
    a.send(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": big}}}));
    assert!(wait_until(
        WAIT,
        || home.status()["upstreams"][0]["inflight"] == json!(1)
    ));
    let t = Instant::now();
    let stop = std::thread::spawn({
        let mut c = home.cmd();
        c.arg("stop").stdin(std::process::Stdio::null());
        move || run_bounded(c, WAIT)
    });
    let r = a.response(&json!(7), Duration::from_secs(5));
    assert_error_within(&r, t, Duration::from_secs(2), "stop with a deaf upstream");
    assert_daemon_stopping(&r, "mcpshare stop");
    assert!(stop.join().unwrap().status.success());
}

/// POST one request on a raw connection, without reading anything back.
fn raw_post(
    s: &mut std::net::TcpStream,
    path: &str,
    port: u64,
    token: &str,
    sid: &str,
    body: &Value,
) {
    let body = body.to_string();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
         Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n\
         Mcp-Session-Id: {sid}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
}

/// A plain HTTP client's session on the first upstream: the daemon's port,
/// its token, the upstream's id and the session's id.
fn http_session(home: &TestHome) -> (u64, String, String, String) {
    let m = home.manifest().unwrap();
    let (port, token) = (m["port"].as_u64().unwrap(), m["token"].as_str().unwrap());
    let id = home.status()["upstreams"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let init = agent
        .post(format!("http://127.0.0.1:{port}/u/{id}/mcp"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .send(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": init_params(json!({}))})
            .to_string(),
        )
        .unwrap();
    let sid = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    (port, token.to_string(), id, sid)
}

#[test]
fn an_idle_http_session_expires_and_a_bridge_session_does_not() {
    let home = TestHome::new("idlesession");
    let mut a = home.bridge_with(&[], &[("MCPSHARE_SESSION_IDLE_SECS", "1")]);
    a.initialize();
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(a.upstream_pid(json!(1)));
    let _ = http_session(&home);
    assert_eq!(sessions(&home), json!(2));
    let t = Instant::now();
    assert!(
        wait_until(Duration::from_secs(5), || sessions(&home) == json!(1)),
        "an idle HTTP session lingers"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    // The bridge's session, idle as long, is kept: its process lives.
    assert_eq!(a.call_text(json!(2), "echo", json!({"text": "ok"})), "ok");
}

#[test]
fn a_client_that_stops_reading_never_stalls_the_upstream() {
    let home = TestHome::new("slowreader");
    let (mut b, _) = home.client();
    let (port, token, id, sid) = http_session(&home);
    let token = token.as_str();
    // Pipelined calls with large answers that it never reads.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
    for n in 0..1024 {
        let call = json!({"jsonrpc": "2.0", "id": n, "method": "tools/call",
            "params": {"name": "big", "arguments": {"bytes": 60_000}}});
        raw_post(&mut raw, &format!("/u/{id}/mcp"), port, token, &sid, &call);
    }
    // Meanwhile another session's calls on the same upstream are answered,
    // for as long as it takes the unread answers (60 MB, more than the
    // socket buffers hold) to fill the raw connection.
    let start = Instant::now();
    let mut n = 100;
    while start.elapsed() < Duration::from_secs(6) {
        let t = Instant::now();
        let r = b.call(json!(n), "echo", json!({"text": "still here"}));
        assert_eq!(text_of(&r).as_deref(), Some("still here"), "{r}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "call {n} took {:?}",
            t.elapsed()
        );
        n += 1;
    }
    drop(raw);
}

/// How many sessions the daemon holds.
fn sessions(home: &TestHome) -> Value {
    home.status()["daemon"]["sessions"].clone()
}

#[test]
fn a_dead_bridge_ends_its_session_in_any_phase() {
    let home = TestHome::new("deadbridge");
    let (mut keep, _) = home.client();
    // Killed mid-call.
    let (mut a, _) = home.client();
    home.sleep_in_flight(&mut a, json!(2), 30_000);
    assert_eq!(sessions(&home), json!(2));
    let t = Instant::now();
    signal(a.pid(), libc::SIGKILL);
    assert!(
        wait_until(Duration::from_secs(2), || sessions(&home) == json!(1)),
        "the session of a bridge killed mid-call lingers after {:?}",
        t.elapsed()
    );
    assert_eq!(
        home.status()["upstreams"][0]["inflight"],
        json!(0),
        "its call is still in flight"
    );
    // Killed between initialize and initialized.
    let mut b = home.bridge(&[]);
    b.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": init_params(json!({}))}));
    b.response(&json!(1), WAIT);
    assert!(wait_until(WAIT, || sessions(&home) == json!(2)));
    let t = Instant::now();
    signal(b.pid(), libc::SIGKILL);
    assert!(
        wait_until(Duration::from_secs(2), || sessions(&home) == json!(1)),
        "the session of a bridge killed before initialized lingers after {:?}",
        t.elapsed()
    );
    assert_eq!(
        keep.call_text(json!(3), "echo", json!({"text": "ok"})),
        "ok"
    );
}

#[test]
fn a_handover_finishes_short_calls_and_answers_the_rest() {
    let home = TestHome::new("handovercalls");
    let (mut old, old_upstream) = home.client_env(&[("MCPSHARE_TEST_REPORTED_VERSION", "0.0.1")]);
    home.sleep_in_flight(&mut old, json!("long"), 60_000);
    old.send(
        &json!({"jsonrpc": "2.0", "id": "short", "method": "tools/call",
        "params": {"name": "sleep", "arguments": {"ms": 1500}}}),
    );
    assert!(wait_until(
        WAIT,
        || home.status()["upstreams"][0]["inflight"] == json!(2)
    ));
    let t = Instant::now();
    let (mut new, new_upstream) = home.client();
    // Never two instances of one server: the old one was gone first.
    assert!(!pid_alive(old_upstream), "two instances ran at once");
    assert_ne!(new_upstream, old_upstream);
    let short = old.response(&json!("short"), WAIT);
    assert_eq!(text_of(&short).as_deref(), Some("slept 1500 ms"), "{short}");
    let long = old.response(&json!("long"), WAIT);
    assert_daemon_stopping(&long, "handed over");
    // Within the drain bound (5 s) and the stop that follows it.
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(new.call_text(json!(2), "echo", json!({"text": "x"})), "x");
}

#[test]
fn an_answer_over_the_message_limit_is_an_error_at_once() {
    let home = TestHome::new("biganswer");
    let mut a = home.bridge_with(&[], &[("MCPSHARE_MAX_MESSAGE_BYTES", "65536")]);
    a.initialize();
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(a.upstream_pid(json!(1)));
    let t = Instant::now();
    let r = a.call(json!(2), "big", json!({"bytes": 100_000}));
    assert_error_within(&r, t, Duration::from_secs(3), "an answer over the limit");
    let text = r["error"]["message"].as_str().unwrap();
    assert!(
        text.contains("65536") && text.contains("MCPSHARE_MAX_MESSAGE_BYTES"),
        "{r}"
    );
    // The upstream and the session carry on.
    assert_eq!(a.call_text(json!(3), "echo", json!({"text": "ok"})), "ok");
}

/// A restart forgets what the daemon knew of the old child: the new one
/// gets the sessions' log level again, and lists are asked of it anew.
#[test]
fn a_restart_sends_the_new_child_the_level_again() {
    let home = TestHome::new("restartlevel");
    let (mut a, first) = home.client();
    let r = a.request(json!(1), "logging/setLevel", json!({"level": "error"}));
    assert!(r.get("result").is_some(), "{r}");
    assert!(
        a.call_text(json!(2), "level", json!({}))
            .starts_with("error")
    );
    let id = home.status()["upstreams"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(home.mcpshare(&["restart", &id]).status.success());
    let second = a.upstream_pid(json!(3));
    home.seen_upstreams.lock().unwrap().push(second);
    assert_ne!(second, first);
    assert!(
        wait_until(WAIT, || a
            .call_text(json!("lv"), "level", json!({}))
            .starts_with("error")),
        "the restarted child never got the session's level"
    );
}
