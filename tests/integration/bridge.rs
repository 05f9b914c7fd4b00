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
