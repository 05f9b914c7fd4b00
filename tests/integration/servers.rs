//! Configured servers at the daemon: `run NAME`, `tools`, `call`, reload,
//! share policies, idle stops, eager starts, limits, tool filters.

use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_configured_server_runs_by_name_and_is_shared() {
    let home = TestHome::new("byname");
    home.write_config(json!({"fx": fixture_entry(json!({"env": {"WHO": "${WHO_IS:-nobody}"}}))}));
    let (mut a, pa) = home.named_client("fx");
    let (_b, pb) = home.named_client("fx");
    assert_eq!(pa, pb, "two clients of one configured server share it");
    assert_eq!(
        a.call_text(json!(1), "env", json!({"name": "WHO"})),
        "nobody"
    );
    let s = server_status(&home, "fx");
    assert_eq!(s["state"], "running", "{s}");
    let text = stdout(&home.mcpshare(&["status"]));
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("fx")
            && l.contains("running")
            && l.contains(&pa.to_string())),
        "{text}"
    );
    assert_eq!(s["pids"], json!([pa]));
    assert_eq!(s["sessions"], json!(2));

    let mut unknown = home.named("nope", &[]);
    let e = unknown.initialize_error();
    assert!(e.contains("no server 'nope'"), "{e}");
}

#[test]
fn tools_and_call_use_the_shared_upstream() {
    let home = TestHome::new("toolscall");
    home.write_config(json!({"fx": fixture_entry(json!({}))}));
    let (_a, pid) = home.named_client("fx");
    let out = home.mcpshare(&["tools", "fx"]);
    assert!(out.status.success(), "{out:?}");
    let listed = stdout(&out);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("echo ") && l.contains("Echo the text back")),
        "{listed}"
    );
    let out = home.mcpshare(&["call", "fx", "pid"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout(&out).trim(),
        pid.to_string(),
        "call used the running upstream"
    );
    let out = home.mcpshare(&["call", "fx", "echo", "text=hello there"]);
    assert_eq!(stdout(&out).trim(), "hello there", "{out:?}");
    let out = home.mcpshare(&["call", "fx", "add", r#"{"a": 2, "b": 3}"#, "--json"]);
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["content"][0]["text"], "5", "{result}");
    let out = home.mcpshare(&["call", "fx", "echo", "novalue"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = home.mcpshare(&["tools", "absent"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no server 'absent'"));
}

#[test]
fn reload_restarts_only_the_changed_server_after_its_call() {
    let home = TestHome::new("reload");
    home.write_config(json!({
        "a": fixture_entry(json!({"env": {"V": "1"}})),
        "b": fixture_entry(json!({"env": {"V": "b"}})),
    }));
    let (mut a, pa) = home.named_client("a");
    let (mut b, pb) = home.named_client("b");
    assert_ne!(pa, pb);
    a.send(
        &json!({"jsonrpc": "2.0", "id": "slow", "method": "tools/call",
        "params": {"name": "sleep", "arguments": {"ms": 1500}}}),
    );
    assert!(wait_until(WAIT, || server_status(&home, "a")["state"]
        == "running"
        && home.status()["upstreams"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["inflight"] == json!(1))));
    home.write_config(json!({
        "a": fixture_entry(json!({"env": {"V": "2"}})),
        "b": fixture_entry(json!({"env": {"V": "b"}})),
    }));
    let out = home.mcpshare(&["reload"]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("restarting a"), "{}", stdout(&out));
    let r = a.response(&json!("slow"), WAIT);
    assert!(
        r.get("result").is_some(),
        "the call in flight was answered: {r}"
    );
    assert!(wait_until(WAIT, || !pid_alive(pa)), "the old a stopped");
    // The client of `a` attaches again, to the new `a`.
    assert_eq!(a.call_text(json!(2), "env", json!({"name": "V"})), "2");
    let new_pa = a.upstream_pid(json!(3));
    home.seen_upstreams.lock().unwrap().push(new_pa);
    assert_ne!(new_pa, pa, "a restarted");
    assert_eq!(b.upstream_pid(json!(4)), pb, "b untouched");
}

#[test]
fn an_invalid_config_is_kept_out_with_its_line_and_column() {
    let home = TestHome::new("badconfig");
    home.write_config(json!({"fx": fixture_entry(json!({}))}));
    let (mut a, pid) = home.named_client("fx");
    let path = home.config_path();
    std::fs::write(&path, "{\n  \"mcpServers\": {\n    \"fx\": {,}\n  }\n}\n").unwrap();
    let out = home.mcpshare(&["reload"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:3:", path.display())), "{err}");
    let status = home.status();
    let shown = status["config"]["error"].as_str().unwrap_or_default();
    assert!(shown.contains(":3:"), "{status}");
    assert_eq!(a.upstream_pid(json!(1)), pid, "the server kept running");
    assert_eq!(server_status(&home, "fx")["state"], "running");
    let text = stdout(&home.mcpshare(&["status"]));
    assert!(
        text.contains("config not applied") && text.contains(":3:"),
        "{text}"
    );
    let doctor = home.mcpshare(&["doctor"]);
    assert_eq!(
        doctor.status.code(),
        Some(1),
        "an invalid config is a doctor error"
    );
    let doctor = stdout(&doctor);
    assert!(
        doctor
            .lines()
            .any(|l| l.starts_with("error") && l.contains("config:") && l.contains(":3:")),
        "{doctor}"
    );
    // The daemon log says it too.
    assert!(wait_until(WAIT, || home
        .log()
        .contains("keeping the last good config")));
}

#[test]
fn sighup_reloads_the_config() {
    let home = TestHome::new("sighup");
    home.write_config(json!({"fx": fixture_entry(json!({}))}));
    let (_a, _) = home.named_client("fx");
    home.write_config(json!({"fx": fixture_entry(json!({})), "gx": fixture_entry(json!({"env": {"G": "1"}, "mcpshare": {"lazy": false}}))}));
    let daemon = home.daemon_pid().unwrap();
    signal(daemon, libc::SIGHUP);
    assert!(
        wait_until(WAIT, || server_status(&home, "gx")["state"] == "running"),
        "{}",
        home.log()
    );
    assert!(pid_alive(daemon), "SIGHUP does not stop the daemon");
    let pids = server_status(&home, "gx")["pids"].clone();
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(pids[0].as_u64().unwrap() as u32);
}

#[test]
fn a_lazy_server_starts_on_first_use_and_stops_when_idle() {
    let home = TestHome::new("idle");
    home.write_config(json!({"fx": fixture_entry(json!({"mcpshare": {"idle_secs": 1}}))}));
    let mut a = home.named("fx", &[]);
    a.initialize();
    let pid = a.upstream_pid(json!(1));
    assert!(
        wait_until(WAIT, || !pid_alive(pid)),
        "the child stops after a second without a call"
    );
    assert!(wait_until(WAIT, || server_status(&home, "fx")["state"] == "stopped"));
    let again = a.upstream_pid(json!(2));
    home.seen_upstreams.lock().unwrap().push(again);
    assert_ne!(again, pid, "the next call started it again");
}

#[test]
fn an_eager_server_starts_with_the_daemon() {
    let home = TestHome::new("eager");
    home.write_config(json!({
        "lazy": fixture_entry(json!({"env": {"K": "lazy"}})),
        "eager": fixture_entry(json!({"env": {"K": "eager"}, "mcpshare": {"lazy": false}})),
    }));
    // Any client starts the daemon; only the eager server starts with it.
    let (_c, _) = home.client();
    assert!(wait_until(WAIT, || server_status(&home, "eager")["state"] == "running"));
    let pids = server_status(&home, "eager")["pids"].clone();
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(pids[0].as_u64().unwrap() as u32);
    assert_eq!(server_status(&home, "lazy")["state"], "stopped");
}

#[test]
fn per_cwd_servers_get_one_upstream_per_directory() {
    let home = TestHome::new("percwd");
    home.write_config(json!({"fx": fixture_entry(json!({"mcpshare": {"share": "per-cwd"}}))}));
    let (d1, d2) = (home.dir.join("p1"), home.dir.join("p2"));
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::create_dir_all(&d2).unwrap();
    let spawn_in = |dir: &std::path::Path| {
        let mut c = home.cmd();
        c.arg("run").arg("fx").current_dir(dir);
        let mut b = Bridge::spawn(c);
        b.initialize();
        let pid = b.upstream_pid(json!("p"));
        home.seen_upstreams.lock().unwrap().push(pid);
        (b, pid)
    };
    let (_a, p1) = spawn_in(&d1);
    let (_b, p1b) = spawn_in(&d1);
    let (_c, p2) = spawn_in(&d2);
    assert_eq!(p1, p1b, "one upstream per directory");
    assert_ne!(p1, p2, "two directories, two upstreams");
    let cwd = std::fs::read_link(format!("/proc/{p2}/cwd")).unwrap();
    assert_eq!(cwd, d2.canonicalize().unwrap());
}

#[test]
fn per_client_servers_are_never_shared() {
    let home = TestHome::new("perclient");
    home.write_config(json!({"fx": fixture_entry(json!({"mcpshare": {"share": "per-client"}}))}));
    let (_a, pa) = home.named_client("fx");
    let (_b, pb) = home.named_client("fx");
    assert_ne!(pa, pb);
}

#[test]
fn memory_limit_shows_in_proc_limits() {
    let home = TestHome::new("limits");
    home.write_config(json!({"fx": fixture_entry(json!({"mcpshare": {"memory_mb": 512}}))}));
    let (_a, pid) = home.named_client("fx");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max data size"))
        .unwrap();
    let bytes = (512u64 << 20).to_string();
    assert_eq!(
        line.split_whitespace().filter(|w| *w == bytes).count(),
        2,
        "soft and hard limits are 512 MiB: {line}"
    );
}

#[test]
fn tool_filters_and_aliases_apply_and_change_live() {
    let home = TestHome::new("filters");
    let with = |tools: Value| json!({"fx": fixture_entry(json!({"mcpshare": {"tools": tools, "aliases": {"echo": "say"}}}))});
    home.write_config(with(json!({"deny": ["crash"]})));
    let (mut a, _) = home.named_client("fx");
    // Every page (the fixture paginates).
    let names = |b: &mut Bridge, id: &str| -> Vec<String> {
        let mut all = Vec::new();
        let mut params = json!({});
        for page in 0..20 {
            let r = b.request(json!(format!("{id}-{page}")), "tools/list", params);
            let result = &r["result"];
            all.extend(
                result["tools"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["name"].as_str().unwrap().to_string()),
            );
            match result["nextCursor"].as_str() {
                Some(c) => params = json!({"cursor": c}),
                None => break,
            }
        }
        all
    };
    let listed = names(&mut a, "l1");
    assert!(listed.contains(&"say".to_string()) && !listed.contains(&"echo".to_string()));
    assert!(!listed.contains(&"crash".to_string()));
    assert_eq!(a.call_text(json!(2), "say", json!({"text": "hi"})), "hi");
    let refused = a.request(
        json!(3),
        "tools/call",
        json!({"name": "crash", "arguments": {}}),
    );
    assert_eq!(refused["error"]["code"], json!(-32602), "{refused}");

    home.write_config(with(json!({"allow": ["echo", "pid"]})));
    let out = home.mcpshare(&["reload"]);
    assert!(stdout(&out).contains("filters updated for fx"), "{out:?}");
    assert!(
        a.wait_for(WAIT, |m| m["method"] == "notifications/tools/list_changed")
            .is_some(),
        "the session is told its list changed"
    );
    let mut listed = names(&mut a, "l2");
    listed.sort();
    assert_eq!(listed, ["pid", "say"]);
}

#[test]
fn run_without_a_dash_dash_still_runs_a_command() {
    let home = TestHome::new("nodashdash");
    home.write_config(json!({"other": fixture_entry(json!({}))}));
    // Gemini CLI drops the `--` of `run -- CMD`; a bare command that is not
    // a configured server's name runs as a command too.
    let mut c = home.cmd();
    c.arg("run")
        .arg("--global")
        .arg(fixture())
        .arg("--ignored-by-fixture");
    let mut b = Bridge::spawn(c);
    b.initialize();
    let pid = b.upstream_pid(json!(1));
    home.seen_upstreams.lock().unwrap().push(pid);
    let mut c = home.cmd();
    c.arg("run").arg(fixture());
    let mut bare = Bridge::spawn(c);
    bare.initialize();
    let bare_pid = bare.upstream_pid(json!(2));
    home.seen_upstreams.lock().unwrap().push(bare_pid);
    assert_eq!(server_status(&home, "other")["state"], "stopped");
}

#[test]
fn an_expanded_secret_in_arguments_is_never_shown() {
    let home = TestHome::new("secretargs");
    home.write_config(json!({"fx": fixture_entry(json!({"args": ["--key=${SECRET_KEY}"]}))}));
    let mut c = home.cmd();
    c.args(["run", "fx"]).env("SECRET_KEY", "s3cr3t-value");
    let mut b = Bridge::spawn(c);
    b.initialize();
    let pid = b.upstream_pid(json!(1));
    home.seen_upstreams.lock().unwrap().push(pid);
    let argv = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        argv.contains("--key=s3cr3t-value"),
        "the server got it: {argv:?}"
    );
    let status = home.status().to_string();
    let text = stdout(&home.mcpshare(&["status"]));
    for shown in [&status, &text, &home.log()] {
        assert!(
            !shown.contains("s3cr3t-value"),
            "the secret is shown: {shown}"
        );
    }
    assert!(
        status.contains("(arguments of configured server fx)"),
        "{status}"
    );
}

#[test]
fn a_servers_own_request_timeout_ends_its_slow_calls() {
    let home = TestHome::new("ownrequesttimeout");
    home.write_config(
        json!({"fx": fixture_entry(json!({"mcpshare": {"request_timeout_secs": 1}}))}),
    );
    let (mut a, _) = home.named_client("fx");
    let r = a.call(json!(1), "sleep", json!({"ms": 5000}));
    let e = r["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"));
    assert!(
        e.contains("after 1 s") && e.contains("request_timeout_secs"),
        "{e}"
    );
    assert_eq!(
        a.call_text(json!(2), "echo", json!({"text": "after"})),
        "after"
    );
}
