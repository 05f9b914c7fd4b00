//! The hub: `mcpshare mcp` over several configured servers.

use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// A fixture server entry; `tag` makes each its own identity.
fn fx(tag: &str, ours: Value) -> Value {
    json!({"command": fixture().display().to_string(), "env": {"TAG": tag}, "mcpshare": ours})
}

fn write(home: &TestHome, config: Value) {
    let path = home.config_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
}

fn pid_of(home: &TestHome, b: &mut Bridge, tool: &str, id: &str) -> u32 {
    let pid: u32 = b.call_text(json!(id), tool, json!({})).parse().unwrap();
    home.seen_upstreams.lock().unwrap().push(pid);
    pid
}

#[test]
fn three_servers_behind_one_endpoint_with_namespaced_tools() {
    let home = TestHome::new("hub3");
    write(
        &home,
        json!({"mcpServers": {"a": fx("a", json!({})), "b": fx("b", json!({})), "c": fx("c", json!({}))}}),
    );
    let mut h = hub(&home, &[]);
    let names = tool_names(&mut h, "l");
    for s in ["a", "b", "c"] {
        for t in ["echo", "pid", "sleep", "progress"] {
            let want = format!("{s}__{t}");
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
    }
    // Status shows each configured upstream's tools as hub clients see them.
    let st = home.status();
    let a = st["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["server"] == "a")
        .cloned()
        .unwrap_or_else(|| panic!("{st}"));
    assert!(
        a["tools"].as_array().unwrap().contains(&json!("a__echo")),
        "{a}"
    );
    // Every page of every server: the fixture paginates its own list.
    let per_server = names.iter().filter(|n| n.starts_with("a__")).count();
    assert!(per_server > 10, "{per_server} tools of a: {names:?}");
    assert_eq!(names.len(), per_server * 3);
    // Same tool name on three servers: each call reaches its own.
    let (pa, pb, pc) = (
        pid_of(&home, &mut h, "a__pid", "1"),
        pid_of(&home, &mut h, "b__pid", "2"),
        pid_of(&home, &mut h, "c__pid", "3"),
    );
    assert!(pa != pb && pb != pc && pa != pc);
    assert_eq!(h.call_text(json!(4), "b__env", json!({"name": "TAG"})), "b");
    assert_eq!(
        h.call_text(json!(5), "c__echo", json!({"text": "hi"})),
        "hi"
    );
    let r = h.call(json!(6), "zz__echo", json!({}));
    assert_eq!(r["error"]["code"], json!(-32602), "{r}");
    // Progress comes through the hub to its request.
    h.send(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "a__progress", "arguments": {"steps": 2, "delay_ms": 1}, "_meta": {"progressToken": "tok"}}}));
    let p = h
        .wait_for(WAIT, |m| m["method"] == "notifications/progress")
        .unwrap();
    assert_eq!(p["params"]["progressToken"], "tok");
    let done = h.response(&json!(7), WAIT);
    assert_eq!(text_of(&done).as_deref(), Some("done 2"), "{done}");
    let bad = h.request(json!(8), "logging/setLevel", json!({"level": "loud"}));
    assert_eq!(bad["error"]["code"], json!(-32602), "{bad}");
    let ok = h.request(json!(9), "logging/setLevel", json!({"level": "debug"}));
    assert!(ok.get("result").is_some(), "{ok}");
    // A drop-in client of the same configured server shares its process.
    let (_c, shared) = home.named_client("b");
    assert_eq!(shared, pb, "the hub and `run b` share one upstream");
}

#[test]
fn two_clients_with_different_profiles() {
    let home = TestHome::new("hubprofiles");
    write(
        &home,
        json!({
            "mcpServers": {"a": fx("a", json!({})), "b": fx("b", json!({})), "c": fx("c", json!({}))},
            "profiles": {
                "ab": {"servers": ["a", "b"], "tools": {"deny": ["b__crash"]}},
                "c": {"servers": ["c"]}
            }
        }),
    );
    let mut one = hub(&home, &["--profile", "ab"]);
    let mut two = hub(&home, &["--profile", "c"]);
    let n1 = tool_names(&mut one, "1");
    let n2 = tool_names(&mut two, "2");
    assert!(
        n1.iter()
            .all(|n| n.starts_with("a__") || n.starts_with("b__")),
        "{n1:?}"
    );
    assert!(!n1.contains(&"b__crash".to_string()) && n1.contains(&"a__crash".to_string()));
    assert!(n2.iter().all(|n| n.starts_with("c__")), "{n2:?}");
    let r = one.call(json!(3), "b__crash", json!({}));
    assert_eq!(
        r["error"]["code"],
        json!(-32602),
        "denied by the profile: {r}"
    );
    let r = two.call(json!(4), "a__echo", json!({"text": "x"}));
    assert!(r.get("error").is_some(), "a is not in profile c: {r}");
    // `--servers` and `--exclude` narrow it too.
    let mut three = hub(&home, &["--exclude", "a,b"]);
    let n3 = tool_names(&mut three, "5");
    assert_eq!(n3, n2);
    let pa = pid_of(&home, &mut one, "a__pid", "6");
    let pc = pid_of(&home, &mut two, "c__pid", "7");
    assert_eq!(pid_of(&home, &mut three, "c__pid", "8"), pc);
    assert_ne!(pa, pc);
}

#[test]
fn long_names_fit_the_budget_and_never_collide() {
    let home = TestHome::new("hubnames");
    let server = "a-server-with-a-long-name-xyz12";
    let long = "create_or_update_entities_with_relations_and_observations_v2";
    write(
        &home,
        json!({"mcpServers": {
            server: fx("a", json!({"aliases": {"echo": long, "add": format!("{long}x")}})),
            "b": fx("b", json!({}))
        }}),
    );
    let mut h = hub(&home, &[]);
    let names = tool_names(&mut h, "l");
    let long_ones: Vec<&String> = names.iter().filter(|n| !n.starts_with("b__")).collect();
    for n in &long_ones {
        assert!(n.len() <= 49, "{n} is over budget");
        assert!(format!("mcp__mcpshare__{n}").len() <= 64);
        assert!(
            n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "{n}"
        );
    }
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        names.len(),
        "two tools share a name: {names:?}"
    );
    // The shortened aliases of echo and add still reach them.
    let shortened: Vec<&String> = long_ones
        .iter()
        .copied()
        .filter(|n| n.contains("__create_or"))
        .collect();
    assert_eq!(shortened.len(), 2, "{long_ones:?}");
    let mut said = Vec::new();
    for (i, n) in shortened.iter().enumerate() {
        let r = h.call(json!(i), n, json!({"text": "hello", "a": 1, "b": 2}));
        said.push(text_of(&r).unwrap_or_default());
    }
    said.sort();
    assert_eq!(said, ["3", "hello"]);
    // A tighter budget from the command line.
    let mut tight = hub(&home, &["--name-budget", "24"]);
    assert!(tool_names(&mut tight, "t").iter().all(|n| n.len() <= 24));
    let pid = pid_of(&home, &mut h, "b__pid", "p");
    assert_eq!(pid_of(&home, &mut tight, "b__pid", "q"), pid);
}

#[test]
fn colliding_resource_uris_are_rewritten_and_mapped_back() {
    let home = TestHome::new("hubres");
    write(
        &home,
        json!({"mcpServers": {"a": fx("a", json!({})), "b": fx("b", json!({}))}}),
    );
    let mut h = hub(&home, &[]);
    let r = h.request(json!(1), "resources/list", json!({}));
    let uris: Vec<String> = r["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["uri"].as_str().unwrap().to_string())
        .collect();
    assert!(
        uris.contains(&"mcpshare-hub://a/fixture://a".to_string()),
        "{uris:?}"
    );
    assert!(
        uris.contains(&"mcpshare-hub://b/fixture://a".to_string()),
        "{uris:?}"
    );
    let read = h.request(
        json!(2),
        "resources/read",
        json!({"uri": "mcpshare-hub://b/fixture://a"}),
    );
    assert_eq!(
        read["result"]["contents"][0]["uri"], "mcpshare-hub://b/fixture://a",
        "{read}"
    );
    assert_eq!(
        read["result"]["contents"][0]["text"],
        "contents of fixture://a"
    );
    // An update of a rewritten URI reaches the client under that URI.
    let sub = h.request(
        json!(20),
        "resources/subscribe",
        json!({"uri": "mcpshare-hub://b/fixture://a"}),
    );
    assert!(sub.get("result").is_some(), "{sub}");
    tool_names(&mut h, "seen");
    // b says its tools changed but they did not: the hub lists b again,
    // sees the same list, and says nothing.
    assert_eq!(h.call_text(json!(21), "b__list_changed", json!({})), "sent");
    assert_eq!(
        h.call_text(json!(22), "b__update", json!({"uri": "fixture://a"})),
        "sent"
    );
    let up = h
        .wait_for(WAIT, |m| m["method"] == "notifications/resources/updated")
        .expect("the update reached the client");
    assert_eq!(up["params"]["uri"], "mcpshare-hub://b/fixture://a", "{up}");
    assert_eq!(
        h.count_method("notifications/tools/list_changed", Duration::ZERO),
        0,
        "an unchanged list was announced"
    );
    let prompts = h.request(json!(3), "prompts/list", json!({}));
    let names: Vec<&str> = prompts["result"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a__greet", "b__greet"]);
    let got = h.request(json!(4), "prompts/get", json!({"name": "b__greet"}));
    assert!(got["result"]["messages"].is_array(), "{got}");
    let pa = pid_of(&home, &mut h, "a__pid", "5");
    let pb = pid_of(&home, &mut h, "b__pid", "6");
    assert_ne!(pa, pb);
}

#[test]
fn a_crash_of_one_server_leaves_the_others_serving() {
    let home = TestHome::new("hubcrash");
    write(
        &home,
        json!({"mcpServers": {"a": fx("a", json!({})), "b": fx("b", json!({}))}}),
    );
    let mut h = hub(&home, &[]);
    let pa = pid_of(&home, &mut h, "a__pid", "1");
    let r = h.call(json!(2), "a__crash", json!({}));
    assert!(
        r.get("error").is_some(),
        "the crashed call gets an error: {r}"
    );
    assert_eq!(
        h.call_text(json!(3), "b__echo", json!({"text": "still"})),
        "still"
    );
    assert!(wait_until(WAIT, || !pid_alive(pa)));
    // a restarts (its session is attached, after its backoff) and serves again.
    let a_running_anew = || {
        let s = home.status();
        let a = s["config"]["servers"]
            .as_array()
            .and_then(|v| v.iter().find(|x| x["name"] == "a").cloned())
            .unwrap_or(Value::Null);
        a["state"] == "running"
            && a["pids"]
                .as_array()
                .is_some_and(|p| !p.is_empty() && p[0] != json!(pa))
    };
    assert!(wait_until(WAIT, a_running_anew), "{}", home.status());
    let again = pid_of(&home, &mut h, "a__pid", "again");
    assert_ne!(again, pa);
    pid_of(&home, &mut h, "b__pid", "4");
}

#[test]
fn a_config_edit_tells_attached_hub_clients_and_answers_their_calls() {
    let home = TestHome::new("hubedit");
    let two = json!({"mcpServers": {"a": fx("a", json!({})), "b": fx("b", json!({}))}});
    write(&home, two);
    let mut x = hub(&home, &[]);
    let mut y = hub(&home, &[]);
    pid_of(&home, &mut x, "a__pid", "1");
    pid_of(&home, &mut y, "b__pid", "2");
    x.send(
        &json!({"jsonrpc": "2.0", "id": "slow", "method": "tools/call",
        "params": {"name": "a__sleep", "arguments": {"ms": 800}}}),
    );
    assert!(wait_until(WAIT, || home.status()["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["inflight"] == json!(1))));
    write(
        &home,
        json!({"mcpServers": {"a": fx("a", json!({})), "b": fx("b", json!({})), "c": fx("c", json!({}))}}),
    );
    let out = home.mcpshare(&["reload"]);
    assert!(out.status.success(), "{out:?}");
    let r = x.response(&json!("slow"), WAIT);
    assert!(
        r.get("result").is_some(),
        "the call in flight was answered: {r}"
    );
    for b in [&mut x, &mut y] {
        assert!(
            b.wait_for(WAIT, |m| m["method"] == "notifications/tools/list_changed")
                .is_some(),
            "a hub client was not told its tools changed"
        );
        let names = tool_names(b, "after");
        assert!(names.contains(&"c__echo".to_string()), "{names:?}");
    }
    pid_of(&home, &mut x, "c__pid", "3");
    // A filter changed on reload: the hub's (cached) list follows at once.
    write(
        &home,
        json!({"mcpServers": {
            "a": fx("a", json!({"tools": {"deny": ["crash"]}})),
            "b": fx("b", json!({})),
            "c": fx("c", json!({}))
        }}),
    );
    let out = home.mcpshare(&["reload"]);
    assert!(out.status.success(), "{out:?}");
    let names = tool_names(&mut x, "filtered");
    assert!(
        !names.contains(&"a__crash".to_string()) && names.contains(&"a__echo".to_string()),
        "{names:?}"
    );
}

#[test]
fn a_lazy_server_stays_listed_from_its_catalog_and_starts_on_a_call() {
    let home = TestHome::new("hubcatalog");
    write(
        &home,
        json!({"mcpServers": {"a": fx("a", json!({"idle_secs": 1})), "b": fx("b", json!({}))}}),
    );
    let state = |name: &str| {
        home.status()["config"]["servers"]
            .as_array()
            .and_then(|v| v.iter().find(|x| x["name"] == name).cloned())
            .unwrap_or(Value::Null)
    };
    let first = {
        let mut h = hub(&home, &[]);
        let names = tool_names(&mut h, "l");
        assert!(names.contains(&"a__echo".to_string()));
        pid_of(&home, &mut h, "a__pid", "p")
    };
    // The first hub client went away; a stops after its idle second.
    assert!(wait_until(WAIT, || !pid_alive(first)));
    assert!(
        wait_until(WAIT, || state("a")["state"] == "stopped"),
        "{}",
        state("a")
    );
    let mut h = hub(&home, &[]);
    assert_eq!(
        state("a")["state"],
        "stopped",
        "initialize did not start a lazy server"
    );
    let names = tool_names(&mut h, "l2");
    assert!(
        names.contains(&"a__echo".to_string()),
        "listed from the catalog: {names:?}"
    );
    assert_eq!(
        state("a")["state"],
        "stopped",
        "listing did not start it either"
    );
    let again = pid_of(&home, &mut h, "a__pid", "p2");
    assert_ne!(again, first, "a call started it");
    pid_of(&home, &mut h, "b__pid", "p3");
}

#[test]
fn a_client_that_paginates_gets_our_pages_across_servers() {
    let home = TestHome::new("hubpages");
    write(
        &home,
        json!({"mcpServers": {"a": fx("a", json!({})), "b": fx("b", json!({}))}}),
    );
    let mut whole = hub(&home, &[]);
    let all = tool_names(&mut whole, "all");
    let mut paged = hub(&home, &["--page-size", "7"]);
    // Page through: 7 at a time, across both servers' lists (each of which
    // the fixture pages itself), to exactly the whole list.
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut first_cursor = None;
    for page in 0.. {
        assert!(page <= all.len() / 7, "more pages than items: {names:?}");
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let r = paged.request(json!(format!("p{page}")), "tools/list", params);
        let tools = r["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"));
        names.extend(
            tools
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string()),
        );
        match r["result"].get("nextCursor") {
            Some(c) => {
                assert_eq!(tools.len(), 7, "{r}");
                cursor = Some(c.as_str().unwrap().to_string());
                first_cursor.get_or_insert(cursor.clone().unwrap());
            }
            None => break,
        }
    }
    assert_eq!(names, all);
    // A cursor that is not ours, or not a string, is refused.
    for bad in [json!("nope"), json!(7)] {
        let r = paged.request(json!("bad"), "tools/list", json!({"cursor": bad}));
        assert_eq!(r["error"]["code"], json!(-32602), "{r}");
    }
    // Once the list changed, an earlier cursor is refused and the client
    // lists again from the start.
    write(&home, json!({"mcpServers": {"a": fx("a", json!({}))}}));
    assert!(home.mcpshare(&["reload"]).status.success());
    assert!(
        paged
            .wait_for(WAIT, |m| m["method"] == "notifications/tools/list_changed")
            .is_some()
    );
    let stale = first_cursor.expect("more than one page");
    let r = paged.request(json!("stale"), "tools/list", json!({"cursor": stale}));
    assert_eq!(r["error"]["code"], json!(-32602), "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("changed"),
        "{r}"
    );
    let again = paged.request(json!("again"), "tools/list", json!({}));
    assert!(
        again["result"]["tools"][0]["name"]
            .as_str()
            .unwrap()
            .starts_with("a__"),
        "{again}"
    );
}
