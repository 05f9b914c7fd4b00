//! The bridge's stdio contract: protocol-only stdout, local ping and
//! discover, bad input answered, prompt exit.

use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

#[test]
fn ping_and_discover_are_answered_before_initialize() {
    let home = TestHome::new("discover");
    let mut b = home.bridge(&[]);
    let r = b.request(json!("p"), "ping", json!({}));
    assert_eq!(r["result"], json!({}));
    let r = b.request(json!(7), "server/discover", json!({}));
    assert_eq!(r["error"]["code"], json!(-32601), "{r}");
    // Then initialize works on the same pipe.
    let init = b.initialize();
    assert_eq!(init["result"]["protocolVersion"], json!("2025-06-18"));
    assert_eq!(
        init["result"]["serverInfo"]["name"],
        json!("mcpshare-fixture")
    );
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(b.upstream_pid(json!(1)));
}

#[test]
fn requests_before_initialize_are_refused_clearly() {
    let home = TestHome::new("preinit");
    let mut b = home.bridge(&[]);
    let r = b.request(json!(1), "tools/list", json!({}));
    assert_eq!(r["error"]["code"], json!(-32600), "{r}");
    assert!(home.daemon_pid().is_none(), "no daemon is needed to refuse");
}

#[test]
fn malformed_and_oversized_lines_get_errors_and_the_bridge_goes_on() {
    let home = TestHome::new("badinput");
    let mut b = home.bridge_with(&[], &[("MCPSHARE_MAX_MESSAGE_BYTES", "4096")]);
    b.initialize();
    b.send_raw(b"{not json");
    let r = b.recv(WAIT).unwrap();
    assert_eq!(r["error"]["code"], json!(-32700), "{r}");
    assert_eq!(r["id"], Value::Null);
    let huge = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"ping\",\"params\":{{\"x\":\"{}\"}}}}",
        "a".repeat(100_000)
    );
    b.send_raw(huge.as_bytes());
    let r = b.recv(WAIT).unwrap();
    assert_eq!(r["error"]["code"], json!(-32600), "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("4096"),
        "{r}"
    );
    b.send_raw(b"[1,2]");
    let r = b.recv(WAIT).unwrap();
    assert_eq!(
        r["error"]["code"],
        json!(-32600),
        "batches outside 2025-03-26: {r}"
    );
    b.send(&json!({"jsonrpc": "2.0", "id": {"bad": 1}, "method": "x"}));
    let r = b.recv(WAIT).unwrap();
    assert_eq!(r["error"]["code"], json!(-32600), "{r}");
    // Still serving.
    assert_eq!(
        b.call_text(json!(2), "echo", json!({"text": "still here"})),
        "still here"
    );
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(b.upstream_pid(json!(3)));
}

#[test]
fn batches_are_unbatched_in_2025_03_26() {
    let home = TestHome::new("batch");
    let mut b = home.bridge(&[]);
    let r = b.request(
        json!(0),
        "initialize",
        json!({"protocolVersion": "2025-03-26", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}),
    );
    assert_eq!(r["result"]["protocolVersion"], json!("2025-03-26"));
    b.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    b.send(&json!([
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}},
        {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"},
        {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    ]));
    let r = b.recv(WAIT).unwrap();
    let arr = r.as_array().unwrap_or_else(|| panic!("want an array: {r}"));
    assert_eq!(arr.len(), 2, "{r}");
    assert_eq!(text_of(&arr[0]).as_deref(), Some("x"));
    assert_eq!(arr[1]["id"], json!(2));
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(b.upstream_pid(json!(3)));
}

#[test]
fn a_long_call_never_holds_up_a_short_one() {
    let home = TestHome::new("concurrent");
    let mut b = home.bridge(&[]);
    b.initialize();
    b.send(
        &json!({"jsonrpc": "2.0", "id": "slow", "method": "tools/call",
        "params": {"name": "sleep", "arguments": {"ms": 3000}}}),
    );
    let fast = b.call(json!("fast"), "echo", json!({"text": "quick"}));
    assert_eq!(text_of(&fast).as_deref(), Some("quick"));
    assert!(
        b.backlog.iter().all(|m| m["id"] != json!("slow")),
        "the slow call finished first"
    );
    let slow = b.response(&json!("slow"), WAIT);
    assert_eq!(text_of(&slow).as_deref(), Some("slept 3000 ms"));
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(b.upstream_pid(json!(3)));
}

#[test]
fn exits_zero_promptly_on_stdin_eof_and_on_sigterm() {
    let home = TestHome::new("exit");
    let (mut b, _) = home.client();
    b.close_stdin();
    let status = b.wait_exit(Duration::from_secs(3)).expect("exit after EOF");
    assert!(status.success(), "{status:?}");
    // Its session ended at the daemon.
    assert!(wait_until(WAIT, || home.status()["daemon"]["sessions"] == json!(0)));

    let mut b = home.bridge(&[]);
    b.initialize();
    signal(b.pid(), libc::SIGTERM);
    let status = b
        .wait_exit(Duration::from_secs(3))
        .expect("exit after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(wait_until(WAIT, || home.status()["daemon"]["sessions"] == json!(0)));
}

#[test]
fn stdout_carries_only_json_even_when_the_upstream_is_noisy() {
    let home = TestHome::new("noise");
    let mut b = home.bridge_with(&[], &[("FIXTURE_NOISE", "1")]);
    b.initialize();
    // recv() panics on any non-JSON stdout line.
    assert_eq!(b.call_text(json!(1), "echo", json!({"text": "q"})), "q");
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(b.upstream_pid(json!(2)));
    assert!(
        wait_until(WAIT, || home.log().contains("non-JSON line")),
        "{}",
        home.log()
    );
}

#[test]
fn a_missing_upstream_command_is_named_in_the_initialize_error() {
    let home = TestHome::new("missing");
    let mut c = home.cmd();
    c.args(["run", "--", "/nonexistent/mcp-server", "--flag"]);
    let mut b = Bridge::spawn(c);
    let msg = b.initialize_error();
    assert!(
        msg.contains("/nonexistent/mcp-server") && msg.contains("No such file"),
        "{msg}"
    );
}

#[test]
fn a_closed_stdout_ends_the_bridge() {
    let home = TestHome::new("epipe");
    let mut c = home.cmd();
    c.args(["run", "--"]).arg(fixture());
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    use std::io::Write;
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})
    )
    .unwrap();
    let exited = wait_until(Duration::from_secs(5), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !exited {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    assert!(exited, "bridge kept running with a closed stdout");
    assert!(status.success(), "{status:?}");
}

/// One HTTP request as the fake daemon saw it.
pub struct FakeRequest {
    pub method: String,
    pub path: String,
    pub body: Value,
}

type FakeHandler = dyn Fn(&FakeRequest) -> String + Send + Sync;

/// A stand-in daemon for the bridge: this test process holds the daemon
/// lock and publishes a manifest naming itself and a listener on 127.0.0.1
/// whose every request (health aside) `handler` answers with a raw HTTP
/// response, so a test can script what the real daemon does only in a race.
struct FakeDaemon {
    _lock: std::fs::File,
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How long a fake daemon's connection waits for the bridge's next request.
const FAKE_IDLE: Duration = Duration::from_secs(30);

impl FakeDaemon {
    fn start(
        home: &TestHome,
        handler: impl Fn(&FakeRequest) -> String + Send + Sync + 'static,
    ) -> FakeDaemon {
        let lock = home.hold_daemon_lock();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = std::process::id();
        let start = mcpshare::platform::start_time(me).unwrap();
        let mut m = manifest_naming(me, start, port);
        m["version"] = json!("9.0.0");
        home.write_manifest(&m);
        let handler: std::sync::Arc<FakeHandler> = std::sync::Arc::new(handler);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let handler = handler.clone();
                std::thread::spawn(move || fake_connection(conn, &*handler));
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

/// Serve the requests of one kept-alive connection until it closes.
fn fake_connection(conn: std::net::TcpStream, handler: &FakeHandler) {
    use std::io::{BufRead, Read, Write};
    let _ = conn.set_read_timeout(Some(FAKE_IDLE));
    let mut out = conn.try_clone().unwrap();
    let mut r = std::io::BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).map_or(true, |n| n == 0) {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).map_or(true, |n| n == 0) {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap_or((h, ""));
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let req = FakeRequest {
            method,
            path,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        };
        let answer = if req.path == "/health" {
            let health = json!({"status": "ok", "pid": std::process::id(), "version": "9.0.0",
                "protocol": mcpshare::state::manifest::PROTOCOL});
            fake_json(200, &health, None)
        } else {
            handler(&req)
        };
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// A raw HTTP response carrying `body` as JSON.
fn fake_json(status: u16, body: &Value, session: Option<&str>) -> String {
    let body = body.to_string();
    let session = session
        .map(|s| format!("Mcp-Session-Id: {s}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{session}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A raw HTTP response: an SSE stream that ends with no event at all.
fn fake_empty_stream() -> String {
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        .to_string()
}

/// What the fake daemon answers for the upstream registry, `initialize`,
/// the GET stream and DELETE: upstream `u1`, session `s1`.
fn fake_control(req: &FakeRequest) -> Option<String> {
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/api/upstreams") => Some(fake_json(200, &json!({"id": "u1"}), None)),
        ("GET", _) => Some("HTTP/1.1 405 X\r\nContent-Length: 0\r\n\r\n".into()),
        ("DELETE", _) => Some("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".into()),
        ("POST", _) if req.body["method"] == json!("initialize") => {
            let result = json!({"protocolVersion": "2025-06-18", "capabilities": {},
                "serverInfo": {"name": "fake", "version": "1"}});
            let answer = json!({"jsonrpc": "2.0", "id": req.body["id"], "result": result});
            Some(fake_json(200, &answer, Some("s1")))
        }
        ("POST", _) if req.body.get("id").is_none() => {
            Some("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".into())
        }
        _ => None,
    }
}

/// Every response to `id` that arrives before the answer to a later
/// local `ping`, the answer to `id` itself included.
fn answers_to(b: &mut Bridge, id: &Value) -> usize {
    b.send(&json!({"jsonrpc": "2.0", "id": "fence", "method": "ping"}));
    b.response(&json!("fence"), WAIT);
    b.backlog.iter().filter(|m| is_response_to(m, id)).count()
}

#[test]
fn a_stream_that_ends_without_the_answer_is_answered_with_an_error() {
    let home = TestHome::new("emptystream");
    let _fake = FakeDaemon::start(&home, |req| {
        fake_control(req).unwrap_or_else(fake_empty_stream)
    });
    let mut b = home.bridge(&[]);
    b.initialize();
    let r = b.call(json!(5), "echo", json!({"text": "x"}));
    assert_eq!(r["error"]["code"], json!(-32000), "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("without an answer"),
        "{r}"
    );
    assert_eq!(answers_to(&mut b, &json!(5)), 0, "exactly one answer");
}

#[test]
fn a_request_the_client_cancelled_gets_no_answer_when_its_stream_ends() {
    let home = TestHome::new("cancelstream");
    let (cancel_tx, cancel_rx) = std::sync::mpsc::channel::<()>();
    let cancel_tx = std::sync::Mutex::new(cancel_tx);
    let cancel_rx = std::sync::Mutex::new(cancel_rx);
    let _fake = FakeDaemon::start(&home, move |req| {
        if req.body["method"] == json!("notifications/cancelled") {
            let _ = cancel_tx.lock().unwrap().send(());
        }
        if let Some(a) = fake_control(req) {
            return a;
        }
        if req.body["id"] == json!("slow") {
            // As the daemon does: the stream of a cancelled call ends empty.
            let _ = cancel_rx.lock().unwrap().recv_timeout(WAIT);
            return fake_empty_stream();
        }
        let answer = json!({"jsonrpc": "2.0", "id": req.body["id"], "result": {}});
        fake_json(200, &answer, None)
    });
    let mut b = home.bridge(&[]);
    b.initialize();
    b.send(
        &json!({"jsonrpc": "2.0", "id": "slow", "method": "tools/call",
        "params": {"name": "sleep", "arguments": {"ms": 60000}}}),
    );
    b.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": "slow", "reason": "test"}}),
    );
    // A later call through the same fake: the cancelled stream ended before it.
    let r = b.request(json!("next"), "tools/list", json!({}));
    assert_eq!(r["result"], json!({}), "{r}");
    assert_eq!(answers_to(&mut b, &json!("slow")), 0);
}

#[test]
fn a_call_in_flight_when_the_daemon_stops_is_answered_once() {
    let home = TestHome::new("daemonstops");
    let (mut b, _) = home.client();
    home.sleep_in_flight(&mut b, json!("slow"), 30_000);
    let pid = home.daemon_pid().unwrap();
    signal(pid, libc::SIGTERM);
    let r = b.response(&json!("slow"), WAIT);
    assert!(r.get("error").is_some(), "{r}");
    // The next call elects a new daemon and carries on.
    assert_eq!(b.call_text(json!(2), "echo", json!({"text": "on"})), "on");
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(b.upstream_pid(json!(3)));
    assert_eq!(answers_to(&mut b, &json!("slow")), 0, "exactly one answer");
}

#[test]
fn an_oversized_request_is_answered_with_its_own_id() {
    let home = TestHome::new("oversized-id");
    let mut b = home.bridge_with(&[], &[("MCPSHARE_MAX_MESSAGE_BYTES", "4096")]);
    let text = "a".repeat(100_000);
    // The TypeScript SDK's order: method and params first, the id last.
    let sdk = format!(
        "{{\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":\"{text}\"}}}},\"jsonrpc\":\"2.0\",\"id\":42}}"
    );
    b.send_raw(sdk.as_bytes());
    let r = b.recv(WAIT).unwrap();
    assert_eq!(r["id"], json!(42), "{r}");
    assert_eq!(r["error"]["code"], json!(-32600), "{r}");
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("4096") && msg.contains("MCPSHARE_MAX_MESSAGE_BYTES"),
        "{msg}"
    );
    // The id first, a string with escapes in it.
    let first = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":\"a\\\"b\\\\\",\"method\":\"tools/call\",\"params\":{{\"x\":\"{text}\"}}}}"
    );
    b.send_raw(first.as_bytes());
    let r = b.recv(WAIT).unwrap();
    assert_eq!(r["id"], json!("a\"b\\"), "{r}");
}

#[test]
fn a_failed_first_initialize_can_be_retried() {
    let home = TestHome::new("initretry");
    // The server fails its first start and starts on the next.
    let marker = home.dir.join("started-once");
    let script = format!(
        "if [ -e '{m}' ]; then exec '{f}'; else : > '{m}'; exit 3; fi",
        m = marker.display(),
        f = fixture().display()
    );
    let mut c = home.cmd();
    c.args(["run", "--", "sh", "-c", &script]);
    let mut b = Bridge::spawn(c);
    let msg = b.initialize_error();
    assert!(!msg.contains("already initialized"), "{msg}");
    let r = b.request(json!(1), "initialize", init_params(json!({})));
    assert!(
        r.get("result").is_some(),
        "the retry got a fresh attempt: {r}"
    );
    b.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(b.upstream_pid(json!(2)));
}

#[test]
fn an_upstream_gone_between_register_and_initialize_is_registered_again() {
    let home = TestHome::new("reregister");
    let registered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = registered.clone();
    let _fake = FakeDaemon::start(&home, move |req| {
        if req.path == "/api/upstreams" {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let first = count.load(std::sync::atomic::Ordering::SeqCst) == 1;
        if first && req.body["method"] == json!("initialize") {
            // Reaped for idleness just after it was registered.
            let e = json!({"jsonrpc": "2.0", "id": req.body["id"],
                "error": {"code": -32001, "message": "unknown upstream u1"}});
            return fake_json(404, &e, None);
        }
        fake_control(req).unwrap_or_else(|| {
            fake_json(
                200,
                &json!({"jsonrpc": "2.0", "id": req.body["id"], "result": {}}),
                None,
            )
        })
    });
    let mut b = home.bridge(&[]);
    b.initialize();
    assert_eq!(registered.load(std::sync::atomic::Ordering::SeqCst), 2);
    let r = b.request(json!(1), "tools/list", json!({}));
    assert_eq!(r["result"], json!({}), "{r}");
}

#[test]
fn a_session_gone_at_the_daemon_is_opened_again() {
    let home = TestHome::new("reattach");
    let inits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = inits.clone();
    let _fake = FakeDaemon::start(&home, move |req| {
        if req.body["method"] == json!("initialize") {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let first = count.load(std::sync::atomic::Ordering::SeqCst) == 1;
        if first && req.body["method"] == json!("tools/list") {
            // Its upstream was retired a moment after the session opened.
            let e = json!({"jsonrpc": "2.0", "id": null,
                "error": {"code": -32001, "message": "Session not found"}});
            return fake_json(404, &e, None);
        }
        fake_control(req).unwrap_or_else(|| {
            fake_json(
                200,
                &json!({"jsonrpc": "2.0", "id": req.body["id"], "result": {}}),
                None,
            )
        })
    });
    let mut b = home.bridge(&[]);
    b.initialize();
    let r = b.request(json!(1), "tools/list", json!({}));
    assert_eq!(r["result"], json!({}), "{r}");
    assert_eq!(inits.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// The bridge's thread count, from /proc.
fn threads_of(pid: u32) -> Option<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// The bound mcpshare(1) documents: 64 workers and a few threads of its own.
const MAX_BRIDGE_THREADS: usize = 72;

#[test]
fn a_thousand_pipelined_calls_are_answered_on_bounded_threads() {
    let home = TestHome::new("pipelined");
    let (mut b, _) = home.client();
    let pid = b.pid();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = stop.clone();
    let sampler = std::thread::spawn(move || {
        let mut most = 0;
        while !stopping.load(std::sync::atomic::Ordering::SeqCst) {
            most = most.max(threads_of(pid).unwrap_or(0));
            std::thread::sleep(Duration::from_millis(5));
        }
        most
    });
    let mut lines = Vec::new();
    for i in 0..1000 {
        let call = json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": "sleep", "arguments": {"ms": 100}}});
        lines.extend(serde_json::to_vec(&call).unwrap());
        lines.push(b'\n');
    }
    lines.pop();
    b.send_raw(&lines);
    let mut answered = std::collections::HashSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while answered.len() < 1000 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let m = b
            .recv(left)
            .unwrap_or_else(|| panic!("{} of 1000 answered", answered.len()));
        assert_eq!(text_of(&m).as_deref(), Some("slept 100 ms"), "{m}");
        assert!(answered.insert(m["id"].as_u64().unwrap()), "twice: {m}");
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let most = sampler.join().unwrap();
    println!("pipelined: at most {most} threads");
    assert!(most > 0, "the thread count was sampled");
    assert!(most <= MAX_BRIDGE_THREADS, "{most} threads");
}

#[test]
fn ping_is_answered_and_the_bridge_exits_promptly_while_the_election_waits() {
    let home = TestHome::new("slowstart");
    // A "daemon" that holds the lock and never publishes a manifest: the
    // election waits for it for its whole timeout.
    let _lock = home.hold_daemon_lock();
    for how in ["SIGTERM", "SIGINT", "EOF"] {
        let mut b = home.bridge(&[]);
        b.send(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": init_params(json!({}))}));
        // Two round trips give the attach time to be under way.
        for id in ["p1", "p2"] {
            let r = b.request(json!(id), "ping", json!({}));
            assert_eq!(r["result"], json!({}), "{how}: {r}");
        }
        b.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        b.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
        b.send(&json!({"jsonrpc": "2.0", "id": "p3", "method": "ping"}));
        let r = b.response(&json!("p3"), Duration::from_secs(1));
        assert_eq!(r["result"], json!({}), "{how}: {r}");
        let t = std::time::Instant::now();
        match how {
            "SIGTERM" => signal(b.pid(), libc::SIGTERM),
            "SIGINT" => signal(b.pid(), libc::SIGINT),
            _ => b.close_stdin(),
        }
        let status = b.wait_exit(Duration::from_secs(1));
        assert!(
            status.is_some_and(|s| s.success()),
            "{how}: {:?} after {:?}",
            status,
            t.elapsed()
        );
        // Nothing it was asked is left unanswered.
        for id in [json!(0), json!(1)] {
            let r = b.response(&id, Duration::from_secs(1));
            assert!(r.get("error").is_some(), "{how}: {r}");
        }
    }
}

#[test]
fn sigterm_ends_a_bridge_whose_upstream_is_slow_to_start() {
    let home = TestHome::new("slowupstream");
    // The daemon waits for this upstream's handshake for 5 s.
    let mut b = home.bridge_with(&[], &[("FIXTURE_STARTUP_DELAY_MS", "5000")]);
    b.send(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": init_params(json!({}))}));
    assert!(
        wait_until(WAIT, || home.status()["upstreams"][0]["pid"]
            .as_u64()
            .is_some()),
        "the upstream never started"
    );
    let up = home.status()["upstreams"][0]["pid"].as_u64().unwrap() as u32;
    home.seen_upstreams.lock().unwrap().push(up);
    let r = b.request(json!("p"), "ping", json!({}));
    assert_eq!(r["result"], json!({}), "{r}");
    let t = std::time::Instant::now();
    signal(b.pid(), libc::SIGTERM);
    let status = b.wait_exit(Duration::from_secs(1));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?} after {:?}",
        t.elapsed()
    );
    let r = b.response(&json!(0), Duration::from_secs(1));
    assert!(r.get("error").is_some(), "initialize is answered: {r}");
}

#[test]
fn a_daemon_that_goes_just_after_the_election_is_elected_anew() {
    use std::io::{BufRead, Write};
    let home = TestHome::new("goneafter");
    // A stopping "daemon": it answers one /health, then closes its port,
    // and lets go of the daemon lock once the test sees that.
    let lock = home.hold_daemon_lock();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let me = std::process::id();
    let mut m = manifest_naming(
        me,
        mcpshare::platform::start_time(me).unwrap(),
        listener.local_addr().unwrap().port(),
    );
    m["version"] = json!("9.0.0");
    home.write_manifest(&m);
    let (answered_tx, answered_rx) = std::sync::mpsc::channel();
    let health = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut r = std::io::BufReader::new(conn.try_clone().unwrap());
        let mut line = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let body = json!({"status": "ok", "pid": me, "version": "9.0.0",
            "protocol": mcpshare::state::manifest::PROTOCOL})
        .to_string();
        let _ = write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = answered_tx.send(());
        // The listener closes here: every later connection is refused.
    });
    let mut b = home.bridge(&[]);
    b.send(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": init_params(json!({}))}));
    answered_rx
        .recv_timeout(WAIT)
        .expect("the bridge asked for health");
    health.join().unwrap();
    drop(lock);
    let r = b.response(&json!(0), WAIT);
    assert!(r.get("result").is_some(), "initialize on a new daemon: {r}");
    b.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(b.upstream_pid(json!(1)));
}

#[test]
fn an_answer_over_the_bridges_limit_is_an_error_and_the_session_carries_on() {
    let home = TestHome::new("bigreply");
    let inits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = inits.clone();
    let _fake = FakeDaemon::start(&home, move |req| {
        if req.body["method"] == json!("initialize") {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        if let Some(a) = fake_control(req) {
            return a;
        }
        let text = match req.body["params"]["arguments"]["bytes"].as_u64() {
            Some(n) => "b".repeat(n as usize),
            None => "small".into(),
        };
        let result = json!({"content": [{"type": "text", "text": text}]});
        let answer = json!({"jsonrpc": "2.0", "id": req.body["id"], "result": result});
        if req.body["params"]["arguments"]["stream"] == json!(true) {
            let event = format!("data: {answer}\n\n");
            return format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{event}\r\n0\r\n\r\n",
                event.len()
            );
        }
        fake_json(200, &answer, None)
    });
    let mut b = home.bridge_with(&[], &[("MCPSHARE_MAX_MESSAGE_BYTES", "4096")]);
    b.initialize();
    for (id, stream) in [(2, false), (3, true)] {
        let r = b.call(json!(id), "big", json!({"bytes": 10_000, "stream": stream}));
        let msg = r["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"));
        assert!(
            msg.contains("4096") && msg.contains("MCPSHARE_MAX_MESSAGE_BYTES"),
            "{r}"
        );
        assert_eq!(b.call_text(json!(id + 10), "echo", json!({})), "small");
    }
    assert_eq!(
        inits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the session carried on"
    );
}

/// A client that sends `notifications/initialized` before the answer to
/// its `initialize` arrives still gets the server's messages, each once.
#[test]
fn initialized_before_the_answer_still_opens_the_stream() {
    let home = TestHome::new("initfirst");
    let mut a = home.bridge(&[]);
    a.send(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": init_params(json!({}))}));
    a.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    assert!(a.response(&json!(0), WAIT).get("result").is_some());
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(a.upstream_pid(json!("pid")));
    let (mut b, _) = home.client();
    assert_eq!(b.call_text(json!(1), "list_changed", json!({})), "sent");
    assert!(
        a.wait_for(WAIT, |m| m["method"]
            == json!("notifications/tools/list_changed"))
            .is_some(),
        "the server's list_changed never reached the client"
    );
    assert_eq!(
        a.count_method(
            "notifications/tools/list_changed",
            Duration::from_millis(300)
        ),
        0,
        "list_changed reached the client more than once"
    );
}

/// A client that ends a server with SIGTERM while closing its stdin (as
/// Codex does) races the bridge's two ways out; whichever wins, the bridge
/// exits once and leaves no registry record behind.
#[test]
fn sigterm_with_end_of_input_leaves_no_record() {
    let home = TestHome::new("termeof");
    let (_keep, _) = home.client();
    for round in 0..50 {
        let mut b = home.bridge(&[]);
        b.initialize();
        let pid = b.pid();
        let record = home.dir.join("processes").join(format!("{pid}.json"));
        assert!(record.exists(), "round {round}: no record for bridge {pid}");
        b.close_stdin();
        signal(pid, libc::SIGTERM);
        assert!(
            b.wait_exit(WAIT).is_some(),
            "round {round}: bridge {pid} did not exit"
        );
        assert!(
            !record.exists(),
            "round {round}: bridge {pid} left its record"
        );
    }
}

#[test]
fn a_flood_past_the_waiting_bound_is_answered_at_once_not_kept() {
    let home = TestHome::new("flood");
    let (mut b, _) = home.client();
    // Calls one at a time, however many, never fill the wait (each leaves
    // it when answered, also when answered without a worker).
    for i in 0..1100 {
        let r = b.call(json!(format!("one{i}")), "echo", json!({"text": "x"}));
        assert_eq!(text_of(&r).as_deref(), Some("x"), "{r}");
    }
    // 64 workers busy with long calls, 1024 requests waiting for one: the
    // rest are answered at once with an error, not kept.
    let total = 1200u64;
    let mut lines = Vec::new();
    for i in 0..total {
        let call = json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": "sleep", "arguments": {"ms": 30000}}});
        lines.extend(serde_json::to_vec(&call).unwrap());
        lines.push(b'\n');
    }
    lines.pop();
    b.send_raw(&lines);
    let at_least = total - 64 - 1024;
    let mut refused = std::collections::HashSet::new();
    let deadline = std::time::Instant::now() + WAIT;
    while (refused.len() as u64) < at_least {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let m = b
            .recv(left)
            .unwrap_or_else(|| panic!("{} of at least {at_least} refused", refused.len()));
        let text = m["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains("already wait for the daemon"), "{m}");
        assert!(refused.insert(m["id"].as_u64().unwrap()), "twice: {m}");
    }
    // The bridge carries on.
    let r = b.request(json!("ping"), "ping", json!({}));
    assert_eq!(r["result"], json!({}), "{r}");
}
