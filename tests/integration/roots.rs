//! Roots of a shared upstream: the daemon asks each roots-capable client
//! for its roots, answers the upstream's `roots/list` itself from the union
//! of the attached clients' roots, and tells the upstream when that union
//! changes. One client's roots never replace another's.

use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

/// A roots-capable client; answers the daemon's first `roots/list` with `uris`.
fn rooted(home: &TestHome, env: &[(&str, &str)], uris: &[&str]) -> Bridge {
    let mut b = home.bridge_with(&[], env);
    b.initialize_with(json!({"roots": {"listChanged": true}}));
    answer_roots(&mut b, uris);
    b
}

/// Answer the next `roots/list` the daemon sends this client.
fn answer_roots(b: &mut Bridge, uris: &[&str]) {
    let ask = b
        .wait_for(WAIT, |m| m["method"] == json!("roots/list"))
        .expect("the daemon asks the client for its roots");
    let roots: Vec<Value> = uris.iter().map(|u| json!({"uri": u, "name": u})).collect();
    b.send(&json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"roots": roots}}));
}

/// The roots the upstream gets when it asks, as the fixture's text.
fn upstream_roots(b: &mut Bridge, id: Value) -> String {
    b.call_text(id, "roots", json!({}))
}

#[test]
fn each_client_keeps_its_own_roots_on_a_shared_upstream() {
    let home = TestHome::new("rootsunion");
    let mut a = rooted(&home, &[], &["file:///a"]);
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(a.upstream_pid(json!("pid")));
    let mut b = rooted(&home, &[], &["file:///b"]);
    let (mut plain, _) = home.client();
    // The upstream's roots/list is answered by the daemon: both clients'
    // roots, whoever calls, and no client is asked during the call.
    for (n, c) in [&mut a, &mut b, &mut plain].into_iter().enumerate() {
        let r = upstream_roots(c, json!(n));
        assert!(r.contains("file:///a") && r.contains("file:///b"), "{r}");
        assert_eq!(c.count_method("roots/list", Duration::from_millis(100)), 0);
    }
    // b's roots change: the daemon asks b again, the upstream is told.
    b.send(&json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}));
    answer_roots(&mut b, &["file:///b2"]);
    assert!(
        wait_until(WAIT, || {
            let r = upstream_roots(&mut a, json!("again"));
            r.contains("file:///b2") && !r.contains("file:///b\"") && r.contains("file:///a")
        }),
        "b's new roots did not replace only b's own"
    );
    let told = a.call_text(
        json!("told"),
        "count",
        json!({"method": "notifications/roots/list_changed"}),
    );
    assert!(
        told.parse::<u64>().unwrap() >= 1,
        "upstream never told: {told}"
    );
    // b leaves: its roots go with it.
    b.close_stdin();
    assert!(b.wait_exit(WAIT).is_some());
    assert!(
        wait_until(WAIT, || {
            let r = upstream_roots(&mut a, json!("left"));
            !r.contains("file:///b2") && r.contains("file:///a")
        }),
        "the roots of a client that left remain"
    );
}

#[test]
fn roots_asked_at_start_wait_for_the_first_client() {
    let home = TestHome::new("rootsstart");
    let mut a = rooted(
        &home,
        &[("FIXTURE_ROOTS_AT_START", "1")],
        &["file:///first"],
    );
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(a.upstream_pid(json!("pid")));
    let mut seen = String::new();
    assert!(
        wait_until(WAIT, || {
            seen = a.call_text(json!("start"), "start_roots", json!({}));
            seen != "pending"
        }),
        "the upstream's first roots/list was never answered"
    );
    assert!(seen.contains("file:///first"), "{seen}");
}
