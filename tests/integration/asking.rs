//! A shared upstream's requests to its clients (sampling, elicitation)
//! never go to a client that did not cause them: over stdio nothing links
//! such a request to the call that caused it, so with calls of several
//! clients in flight the daemon refuses to guess, and from then on runs
//! that upstream's calls one client at a time.

use crate::common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// `n` concurrent calls of `tool` from a client that answers the
/// upstream's sampling and elicitation requests with its own `name`. Each
/// call's result: Ok(text) or Err(error message).
fn calls_answering_as(
    b: &mut Bridge,
    name: &str,
    tool: &str,
    n: usize,
) -> Vec<Result<String, String>> {
    for i in 0..n {
        b.send(&json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": tool, "arguments": {"prompt": name, "message": name}}}));
    }
    let mut results: Vec<Option<Result<String, String>>> = vec![None; n];
    let deadline = Instant::now() + Duration::from_secs(60);
    while results.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = b
            .recv(left)
            .unwrap_or_else(|| panic!("{name}: calls left unanswered"));
        match m["method"].as_str() {
            Some("sampling/createMessage") => b.send(&json!({"jsonrpc": "2.0", "id": m["id"],
                "result": {"role": "assistant", "model": "m",
                    "content": {"type": "text", "text": format!("answered-by-{name}")}}})),
            Some("elicitation/create") => b.send(&json!({"jsonrpc": "2.0", "id": m["id"],
                "result": {"action": "accept", "content": {"name": format!("answered-by-{name}")}}})),
            Some(_) => {}
            None => {
                let Some(i) = m["id"].as_u64().filter(|i| (*i as usize) < n) else {
                    continue;
                };
                results[i as usize] = Some(match m.get("error") {
                    Some(e) => Err(e["message"].as_str().unwrap_or("").to_string()),
                    None if m["result"]["isError"] == json!(true) => {
                        Err(text_of(&m).unwrap_or_default())
                    }
                    None => Ok(text_of(&m).unwrap_or_default()),
                });
            }
        }
    }
    results.into_iter().map(Option::unwrap).collect()
}

/// Three clients call `tool` concurrently, `n` times each, twice over.
/// No answer ever comes from another client; the first round may refuse
/// (saying why), the second, with the upstream known to ask, succeeds.
fn three_clients_never_answer_for_each_other(tool: &str, n: usize) {
    let home = TestHome::new(&format!("asking-{tool}"));
    let caps = json!({"sampling": {}, "elicitation": {"form": {}}});
    let mut clients: Vec<(String, Bridge)> = ["ann", "bob", "cyd"]
        .iter()
        .map(|name| {
            let (b, _) = home.client_with(caps.clone());
            (name.to_string(), b)
        })
        .collect();
    for round in 0..2 {
        let t = Instant::now();
        let rounds: Vec<(String, Vec<Result<String, String>>)> = std::thread::scope(|s| {
            let handles: Vec<_> = clients
                .iter_mut()
                .map(|(name, b)| {
                    let name = name.clone();
                    s.spawn(move || {
                        let r = calls_answering_as(b, &name, tool, n);
                        (name, r)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        eprintln!(
            "{tool} round {round}: {} calls of 3 clients in {:?}",
            3 * n,
            t.elapsed()
        );
        for (name, results) in &rounds {
            for r in results {
                match r {
                    Ok(text) => {
                        assert!(
                            text.contains(&format!("answered-by-{name}")),
                            "{name}'s call was answered by another client: {text}"
                        );
                    }
                    Err(e) => {
                        assert!(round == 0, "round {round}: {name}: {e}");
                        assert!(e.contains("not guessing"), "{name}: {e}");
                    }
                }
            }
        }
    }
    let st: Value = home.status();
    assert_eq!(st["upstreams"][0]["asks_clients"], json!(true), "{st}");
}

#[test]
fn sampling_requests_never_reach_another_client() {
    three_clients_never_answer_for_each_other("sampling", 8);
}

#[test]
fn elicitation_requests_never_reach_another_client() {
    three_clients_never_answer_for_each_other("elicit", 8);
}

#[test]
fn a_single_client_is_asked_as_before() {
    let home = TestHome::new("asking-single");
    let (mut a, _) = home.client_with(json!({"sampling": {}}));
    let r = calls_answering_as(&mut a, "ann", "sampling", 4);
    for r in r {
        assert!(r.unwrap().contains("answered-by-ann"));
    }
}

#[test]
fn asking_is_remembered_by_the_next_daemon() {
    let home = TestHome::new("asking-kept");
    let (mut a, _) = home.client_with(json!({"sampling": {}}));
    let r = calls_answering_as(&mut a, "ann", "sampling", 1);
    assert!(r[0].as_ref().unwrap().contains("answered-by-ann"));
    assert_eq!(home.status()["upstreams"][0]["asks_clients"], json!(true));
    assert!(home.mcpshare(&["stop"]).status.success());
    let (_b, _) = home.client();
    let st = home.status();
    assert_eq!(st["upstreams"][0]["asks_clients"], json!(true), "{st}");
}

/// The daemon declares every client capability it can route, so a shared
/// server offers what it would offer directly; a request the calling client
/// cannot answer gets an error naming the capability it lacks.
#[test]
fn every_routable_capability_is_declared_and_a_missing_one_is_named() {
    let home = TestHome::new("asking-caps");
    let (mut a, _) = home.client_with(json!({"sampling": {}, "elicitation": {"form": {}}}));
    let caps: Value =
        serde_json::from_str(&a.call_text(json!(1), "client_caps", json!({}))).unwrap();
    assert!(caps["sampling"].get("tools").is_some(), "{caps}");
    assert!(caps["elicitation"].get("url").is_some(), "{caps}");
    assert!(caps["elicitation"].get("form").is_some(), "{caps}");
    assert!(caps["roots"].get("listChanged").is_some(), "{caps}");
    for (tool, lacking) in [
        ("elicit_url", "elicitation.url"),
        ("sampling_tools", "sampling.tools"),
    ] {
        let r = a.call(json!(tool), tool, json!({"message": "m"}));
        let text = format!("{r}");
        assert!(
            text.contains(&format!("did not declare the {lacking} capability")),
            "{tool}: {r}"
        );
    }
    // A client that declares URL elicitation is asked.
    let (mut b, _) = home.client_with(json!({"elicitation": {"url": {}}}));
    b.send(&json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "elicit_url", "arguments": {"message": "m"}}}));
    let ask = b
        .wait_for(WAIT, |m| m["method"] == json!("elicitation/create"))
        .expect("the URL elicitation reaches the client that declared it");
    assert_eq!(ask["params"]["mode"], json!("url"));
    b.send(&json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept"}}));
    assert!(
        text_of(&b.response(&json!(5), WAIT))
            .unwrap()
            .contains("accept")
    );
}

/// On an upstream that asks its clients, a session with calls in flight
/// keeps its turn: its next call runs at once, not behind a session that
/// waits for it (which would wait on each other until the timeout).
#[test]
fn a_session_holding_the_turn_is_not_queued_behind_another() {
    let home = TestHome::new("asking-turn");
    let (mut a, _) = home.client_with(json!({"sampling": {}}));
    let (mut b, _) = home.client();
    let r = calls_answering_as(&mut a, "ann", "sampling", 1);
    assert!(r[0].as_ref().unwrap().contains("answered-by-ann"));
    home.sleep_in_flight(&mut a, json!("slow"), 3000);
    b.send(&json!({"jsonrpc": "2.0", "id": "b", "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "b"}}}));
    assert!(wait_until(WAIT, || home.status()["upstreams"][0]["queued"] == json!(1)));
    let t = Instant::now();
    assert_eq!(
        a.call_text(json!("again"), "echo", json!({"text": "a"})),
        "a"
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "waited {:?}",
        t.elapsed()
    );
    // B goes once A's calls are done.
    assert!(text_of(&b.response(&json!("b"), WAIT)).is_some());
    assert!(a.response(&json!("slow"), WAIT).get("result").is_some());
}
