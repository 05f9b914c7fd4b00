//! A bridge that re-attaches to a new daemon restores its session there:
//! the log level and resource subscriptions its client set, and its stream
//! of unsolicited messages, before any new request of the client is sent.

use crate::common::*;
use serde_json::{Value, json};

/// Kill the daemon of `home` with SIGKILL while `client` has a call in
/// flight, and wait for that call's error: the bridge has then dropped its
/// attachment, so its next request re-attaches (rather than meeting a
/// kept-alive connection of the dying daemon).
fn kill_daemon(home: &TestHome, client: &mut Bridge) {
    home.sleep_in_flight(client, json!("in-flight"), 30_000);
    let daemon = home.daemon_pid().expect("a daemon in the manifest");
    signal(daemon, libc::SIGKILL);
    let r = client.response(&json!("in-flight"), WAIT);
    assert!(r.get("error").is_some(), "the call in flight survived: {r}");
    assert!(
        wait_until(WAIT, || !pid_alive(daemon)),
        "daemon {daemon} outlived SIGKILL"
    );
}

fn ok(r: &Value) {
    assert!(r.get("result").is_some(), "want a result: {r}");
}

#[test]
fn reattach_replays_log_level_and_subscriptions_before_new_requests() {
    let home = TestHome::new("reattach-level");
    let (mut a, _) = home.client();
    ok(&a.request(json!(1), "logging/setLevel", json!({"level": "error"})));
    ok(&a.request(
        json!(2),
        "resources/subscribe",
        json!({"uri": "fixture://a"}),
    ));
    ok(&a.request(
        json!(3),
        "resources/subscribe",
        json!({"uri": "fixture://b"}),
    ));
    ok(&a.request(
        json!(4),
        "resources/unsubscribe",
        json!({"uri": "fixture://b"}),
    ));
    assert_eq!(
        a.call_text(json!(5), "level", json!({})),
        "error fixture://a"
    );
    kill_daemon(&home, &mut a);
    // Several requests at once: the first re-attaches, the others wait for
    // it; none may reach the new upstream before the session is restored.
    let ids: Vec<Value> = (10..14).map(|i| json!(i)).collect();
    for id in &ids {
        a.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "level", "arguments": {}}}));
    }
    for id in &ids {
        let r = a.response(id, WAIT);
        assert_eq!(
            text_of(&r).as_deref(),
            Some("error fixture://a"),
            "request {id} after re-attach: {r}"
        );
    }
    let up = a.upstream_pid(json!("pid"));
    home.seen_upstreams.lock().unwrap().push(up);
}

#[test]
fn reattach_reopens_the_stream_and_resource_updates_reach_the_client() {
    let home = TestHome::new("reattach-updated");
    let (mut a, _) = home.client();
    ok(&a.request(
        json!(1),
        "resources/subscribe",
        json!({"uri": "fixture://a"}),
    ));
    kill_daemon(&home, &mut a);
    // The next request re-attaches; after its answer the client sends nothing.
    assert_eq!(
        a.call_text(json!(2), "echo", json!({"text": "back"})),
        "back"
    );
    let (mut b, up) = home.client();
    assert_eq!(
        b.call_text(json!(3), "update", json!({"uri": "fixture://a"})),
        "sent"
    );
    let note = a.wait_for(WAIT, |m| {
        m["method"] == json!("notifications/resources/updated")
    });
    assert_eq!(
        note.as_ref().map(|n| &n["params"]["uri"]),
        Some(&json!("fixture://a")),
        "no resources/updated after re-attach; bridge stderr:\n{}",
        a.stderr.lock().unwrap()
    );
    assert_eq!(a.upstream_pid(json!("pid")), up, "not one shared upstream");
}

/// After a re-attach the bridge tells its client once that each list may
/// have changed (the new daemon's upstream announces nothing itself).
#[test]
fn reattach_is_announced_once() {
    let home = TestHome::new("reattach-once");
    let (mut a, _) = home.client();
    kill_daemon(&home, &mut a);
    let up = a.upstream_pid(json!("pid"));
    home.seen_upstreams.lock().unwrap().push(up);
    for list in ["tools", "prompts", "resources"] {
        let method = format!("notifications/{list}/list_changed");
        assert!(
            a.wait_for(WAIT, |m| m["method"] == json!(method)).is_some(),
            "no {list}/list_changed after re-attach"
        );
        assert_eq!(
            a.count_method(&method, std::time::Duration::from_millis(300)),
            0,
            "{list}/list_changed more than once"
        );
    }
}
