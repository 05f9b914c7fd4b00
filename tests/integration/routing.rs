//! N sessions on one upstream behave like private servers: progress,
//! cancellation, the upstream's own requests, log levels, subscriptions
//! and cached lists each land where they belong.

use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

fn pair(home: &TestHome, caps: Value) -> (Bridge, Bridge) {
    let (a, _) = home.client_with(caps.clone());
    let (b, _) = home.client_with(caps);
    (a, b)
}

fn progress_call(steps: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "progress", "arguments": {"steps": steps, "delay_ms": 20}, "_meta": {"progressToken": 1}}})
}

#[test]
fn each_session_sees_only_its_own_progress_and_answers() {
    let home = TestHome::new("progress");
    let (mut a, mut b) = pair(&home, json!({}));
    a.send(&progress_call(3));
    b.send(&progress_call(5));
    assert_eq!(text_of(&a.response(&json!(1), WAIT)).unwrap(), "done 3");
    assert_eq!(text_of(&b.response(&json!(1), WAIT)).unwrap(), "done 5");
    for (s, want) in [(&mut a, 3), (&mut b, 5)] {
        let progress: Vec<&Value> = s
            .backlog
            .iter()
            .filter(|m| m["method"] == json!("notifications/progress"))
            .collect();
        assert_eq!(progress.len(), want, "{:?}", s.backlog);
        assert!(progress.iter().all(
            |m| m["params"]["progressToken"] == json!(1) && m["params"]["total"] == json!(want)
        ));
    }
}

#[test]
fn cancelling_in_one_session_leaves_the_other_untouched() {
    let home = TestHome::new("cancel");
    let (mut a, mut b) = pair(&home, json!({}));
    for s in [&mut a, &mut b] {
        s.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "sleep", "arguments": {"ms": 1500}}}));
    }
    assert!(wait_until(
        WAIT,
        || home.status()["upstreams"][0]["inflight"] == json!(2)
    ));
    a.send(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1, "reason": "test"}}));
    assert_eq!(
        text_of(&b.response(&json!(1), WAIT)).unwrap(),
        "slept 1500 ms"
    );
    // The cancelled call gets no answer at all.
    assert!(
        a.wait_for(Duration::from_millis(500), |m| is_response_to(m, &json!(1)))
            .is_none()
    );
    assert_eq!(
        a.call_text(
            json!(2),
            "count",
            json!({"method": "notifications/cancelled"})
        ),
        "1"
    );
}

#[test]
fn a_session_whose_client_dies_is_ended_and_its_calls_cancelled() {
    let home = TestHome::new("expiry");
    let (mut a, mut b) = pair(&home, json!({}));
    home.sleep_in_flight(&mut a, json!(1), 20000);
    signal(a.pid(), libc::SIGKILL);
    assert!(
        wait_until(WAIT, || home.status()["daemon"]["sessions"] == json!(1)),
        "the dead client's session lingers"
    );
    assert!(wait_until(WAIT, || b.call_text(
        json!(2),
        "count",
        json!({"method": "notifications/cancelled"})
    ) == "1"));
    assert_eq!(home.status()["upstreams"][0]["inflight"], json!(0));
}

#[test]
fn the_upstreams_own_requests_reach_the_calling_session_or_get_an_error() {
    let home = TestHome::new("roots");
    let mut a = home.bridge(&[]);
    let mut plain = home.bridge(&[]);
    a.initialize_with(json!({"roots": {"listChanged": true}, "sampling": {}}));
    plain.initialize();
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(a.upstream_pid(json!("pid")));

    // The daemon asks a roots-capable client for its roots (see roots.rs).
    let ask = a
        .wait_for(WAIT, |m| m["method"] == json!("roots/list"))
        .expect("the daemon asks for roots");
    a.send(&json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"roots": []}}));

    a.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "sampling", "arguments": {"prompt": "hi"}}}));
    let ask = a
        .wait_for(WAIT, |m| m["method"] == json!("sampling/createMessage"))
        .expect("sampling reaches the caller");
    a.send(
        &json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"role": "assistant", "model": "m",
        "content": {"type": "text", "text": "sampled"}}}),
    );
    assert!(
        text_of(&a.response(&json!(2), WAIT))
            .unwrap()
            .contains("sampled")
    );

    // A client that did not declare sampling: the upstream gets an error, nobody is asked.
    let r = plain.call(json!(3), "sampling", json!({"prompt": "hi"}));
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the calling client did not declare the sampling capability"),
        "{r}"
    );
    assert_eq!(
        plain.count_method("sampling/createMessage", Duration::from_millis(100)),
        0
    );
    assert_eq!(
        a.count_method("sampling/createMessage", Duration::from_millis(100)),
        0,
        "never broadcast"
    );
}

#[test]
fn log_levels_are_per_session_and_the_upstream_gets_the_minimum() {
    let home = TestHome::new("levels");
    let (mut a, mut b) = pair(&home, json!({}));
    assert!(
        a.request(json!(1), "logging/setLevel", json!({"level": "error"}))
            .get("result")
            .is_some()
    );
    assert!(
        b.request(json!(1), "logging/setLevel", json!({"level": "debug"}))
            .get("result")
            .is_some()
    );
    assert!(
        a.call_text(json!(2), "level", json!({}))
            .starts_with("debug")
    );
    let r = a.request(json!(3), "logging/setLevel", json!({"level": "loud"}));
    assert_eq!(r["error"]["code"], json!(-32602));

    a.call_text(json!(4), "log", json!({"level": "info", "message": "to a"}));
    b.call_text(json!(4), "log", json!({"level": "info", "message": "to b"}));
    assert_eq!(
        a.count_method("notifications/message", Duration::from_millis(200)),
        0,
        "below a's level"
    );
    assert_eq!(
        b.count_method("notifications/message", Duration::from_millis(200)),
        1
    );
    a.call_text(
        json!(5),
        "log",
        json!({"level": "critical", "message": "loud"}),
    );
    assert_eq!(
        a.count_method("notifications/message", Duration::from_millis(200)),
        1
    );

    // When b leaves, the upstream is raised to the lowest remaining level.
    drop(b);
    assert!(wait_until(WAIT, || a
        .call_text(json!(6), "level", json!({}))
        .starts_with("error")));
}

#[test]
fn subscriptions_are_counted_and_updates_go_only_to_subscribers() {
    let home = TestHome::new("subs");
    let (mut a, mut b) = pair(&home, json!({}));
    let sub = |s: &mut Bridge, id: u64, uri: &str| {
        let r = s.request(json!(id), "resources/subscribe", json!({"uri": uri}));
        assert!(r.get("result").is_some(), "{r}");
    };
    sub(&mut a, 1, "fixture://a");
    sub(&mut b, 1, "fixture://a");
    sub(&mut b, 2, "fixture://b");
    assert_eq!(
        a.call_text(json!(3), "count", json!({"method": "resources/subscribe"})),
        "2"
    );
    assert_eq!(
        a.call_text(json!(4), "level", json!({})),
        "unset fixture://a,fixture://b"
    );

    a.call_text(json!(5), "update", json!({"uri": "fixture://b"}));
    let updated = |m: &Value| m["method"] == json!("notifications/resources/updated");
    assert!(b.wait_for(WAIT, updated).is_some());
    assert_eq!(
        a.count_method(
            "notifications/resources/updated",
            Duration::from_millis(200)
        ),
        0
    );
    a.call_text(json!(6), "update", json!({"uri": "fixture://a"}));
    assert!(a.wait_for(WAIT, updated).is_some());
    assert!(b.wait_for(WAIT, updated).is_some());

    // a leaves fixture://a: b still holds it, so the upstream keeps it.
    let r = a.request(
        json!(7),
        "resources/unsubscribe",
        json!({"uri": "fixture://a"}),
    );
    assert!(r.get("result").is_some());
    assert_eq!(
        a.call_text(
            json!(8),
            "count",
            json!({"method": "resources/unsubscribe"})
        ),
        "0"
    );
    // b's session ends: both URIs are released at the upstream.
    drop(b);
    assert!(wait_until(WAIT, || a.call_text(
        json!(9),
        "level",
        json!({})
    ) == "unset "));
}

fn all_tool_pages(s: &mut Bridge, first_id: u64) -> usize {
    let (mut cursor, mut tools, mut id) = (None::<String>, 0, first_id);
    loop {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let r = s.request(json!(id), "tools/list", params);
        id += 1;
        tools += r["result"]["tools"].as_array().unwrap().len();
        match r["result"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return tools,
        }
    }
}

#[test]
fn lists_are_served_from_cache_until_list_changed() {
    let home = TestHome::new("cache");
    let (mut a, mut b) = pair(&home, json!({}));
    let n = all_tool_pages(&mut a, 10);
    assert!(n > 5, "paged over several pages: {n}");
    let pages = a.call_text(json!(1), "count", json!({"method": "tools/list"}));
    assert_eq!(all_tool_pages(&mut b, 10), n);
    assert_eq!(
        b.call_text(json!(2), "count", json!({"method": "tools/list"})),
        pages,
        "served from cache"
    );
    a.call_text(json!(3), "list_changed", json!({}));
    assert!(
        b.wait_for(WAIT, |m| m["method"]
            == json!("notifications/tools/list_changed"))
            .is_some()
    );
    all_tool_pages(&mut b, 20);
    let after: u64 = b
        .call_text(json!(4), "count", json!({"method": "tools/list"}))
        .parse()
        .unwrap();
    assert!(
        after > pages.parse::<u64>().unwrap(),
        "list_changed invalidates the cache"
    );
}
