//! Configured servers by name on the command line: `logs NAME`,
//! `restart NAME`, and the STATE of `list` (from the running daemon, from
//! the file alone, and `installing` while `add --source` installs). And the
//! hub's names of tools, remembered in `catalog/_names.json`.

use crate::common::*;
use serde_json::{Value, json};
use std::process::{Output, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `list --json`'s entry for `name` (Null when it lists none).
fn listed(home: &TestHome, name: &str) -> Value {
    let o = home.mcpshare(&["list", "--json"]);
    assert!(o.status.success(), "{o:?}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["servers"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

/// The STATE cell of `name`'s row in the `list` table.
fn list_row(home: &TestHome, name: &str) -> String {
    let o = home.mcpshare(&["list"]);
    assert!(o.status.success(), "{o:?}");
    out(&o)
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no row {name} in {}", out(&o)))
        .to_string()
}

#[test]
fn logs_and_restart_take_a_configured_servers_name() {
    let home = TestHome::new("names-logs");
    home.write_config(json!({
        "fx": fixture_entry(json!({})),
        "idle": fixture_entry(json!({})),
        "off": fixture_entry(json!({"mcpshare": {"enabled": false}})),
        "each": fixture_entry(json!({"mcpshare": {"share": "per-client"}})),
    }));
    let (mut a, pid) = home.named_client("fx");
    let id = server_status(&home, "fx")["upstreams"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(id, "fx");

    let o = home.mcpshare(&["logs", "fx"]);
    assert!(o.status.success(), "{o:?}");
    assert!(
        out(&o).contains(&format!("started pid {pid}")),
        "{}",
        out(&o)
    );
    assert_eq!(
        out(&o),
        out(&home.mcpshare(&["logs", &id])),
        "the name shows its upstream's log"
    );

    let o = home.mcpshare(&["restart", "fx"]);
    assert!(o.status.success(), "{o:?}");
    assert!(
        out(&o).starts_with(&format!("restarted fx (upstream {id}) (pid ")),
        "{}",
        out(&o)
    );
    let new_pid = a.upstream_pid(json!("after"));
    home.seen_upstreams.lock().unwrap().push(new_pid);
    assert_ne!(new_pid, pid, "restart NAME started a new process");
    assert_eq!(server_status(&home, "fx")["pids"], json!([new_pid]));

    // Not running: not started by restart, and no log to show.
    let o = home.mcpshare(&["restart", "idle"]);
    assert!(o.status.success(), "{o:?}");
    assert!(out(&o).contains("idle is not running (stopped); it starts on its next use"));
    assert_eq!(server_status(&home, "idle")["upstreams"], json!([]));
    let o = home.mcpshare(&["logs", "idle"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        err(&o).contains("server idle has no upstream running"),
        "{}",
        err(&o)
    );
    let o = home.mcpshare(&["restart", "off"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(err(&o).contains("mcpshare enable off"), "{}", err(&o));

    // Two upstreams of a per-client server: logs wants one id, restart does both.
    let (_b, p1) = home.named_client("each");
    let (_c, p2) = home.named_client("each");
    assert_ne!(p1, p2);
    let ids = server_status(&home, "each")["upstreams"].clone();
    let ids: Vec<&str> = ids
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    let o = home.mcpshare(&["logs", "each"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        err(&o).contains("runs 2 upstreams") && ids.iter().all(|i| err(&o).contains(i)),
        "{}",
        err(&o)
    );
    let o = home.mcpshare(&["restart", "each"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        out(&o).matches("restarted each (upstream ").count(),
        2,
        "{}",
        out(&o)
    );
    assert!(wait_until(WAIT, || {
        let s = server_status(&home, "each");
        s["state"] == "running" && s["pids"].as_array().is_some_and(|p| p.len() == 2)
    }));
    for p in server_status(&home, "each")["pids"].as_array().unwrap() {
        let p = p.as_u64().unwrap() as u32;
        assert!(p != p1 && p != p2, "both upstreams restarted");
        home.seen_upstreams.lock().unwrap().push(p);
    }

    // An id keeps working, and a word that is neither stays an error.
    let o = home.mcpshare(&["restart", &id]);
    assert!(o.status.success(), "{o:?}");
    let o = home.mcpshare(&["restart", "nosuch"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let o = home.mcpshare(&["logs", "no/such"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");

    // No daemon: restart NAME says so, starts nothing.
    drop((a, _b, _c));
    let o = home.mcpshare(&["stop"]);
    assert!(o.status.success(), "{o:?}");
    let o = home.mcpshare(&["restart", "fx"]);
    assert!(o.status.success(), "{o:?}");
    assert!(
        out(&o).contains("fx is not running (no daemon runs)"),
        "{}",
        out(&o)
    );
    assert_eq!(home.daemon_pid().filter(|p| pid_alive(*p)), None);
    let o = home.mcpshare(&["logs", "fx"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(err(&o).contains("server fx is not running"), "{}", err(&o));
}

#[test]
fn list_shows_each_servers_state_from_the_daemon_or_the_file() {
    let home = TestHome::new("names-list");
    home.write_config(json!({
        "fx": fixture_entry(json!({"env": {"TOKEN": "sk-secret-value"}})),
        "idle": fixture_entry(json!({})),
        "off": fixture_entry(json!({"mcpshare": {"enabled": false}})),
        "needs": fixture_entry(json!({"env": {"K": "${MCPSHARE_TEST_NEVER_SET}"}})),
    }));
    // No daemon: the file's word, and list starts none.
    assert_eq!(listed(&home, "fx")["state"], "stopped");
    assert_eq!(listed(&home, "off")["state"], "disabled");
    assert!(list_row(&home, "fx").contains(" stopped "));
    assert!(home.manifest().is_none(), "list started a daemon");

    let (_a, pid) = home.named_client("fx");
    let mut bad = home.named("needs", &[]);
    let e = bad.initialize_error();
    assert!(e.contains("MCPSHARE_TEST_NEVER_SET"), "{e}");
    assert_eq!(listed(&home, "fx")["state"], "running");
    assert_eq!(listed(&home, "idle")["state"], "stopped");
    assert_eq!(listed(&home, "off")["state"], "disabled");
    let needs = listed(&home, "needs");
    assert_eq!(needs["state"], "failed", "{needs}");
    assert!(
        needs["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("MCPSHARE_TEST_NEVER_SET")),
        "{needs}"
    );
    let o = home.mcpshare(&["list"]);
    let table = out(&o);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header[..3], ["NAME", "STATE", "KIND"], "{table}");
    assert!(list_row(&home, "fx").contains(" running "), "{table}");
    assert!(
        table.contains("\n  failed: ") && table.contains("MCPSHARE_TEST_NEVER_SET"),
        "{table}"
    );
    assert!(!table.contains("sk-secret-value"), "{table}");
    assert!(!out(&home.mcpshare(&["list", "--json"])).contains("sk-secret-value"));
    assert_eq!(server_status(&home, "fx")["pids"], json!([pid]));
}

/// A node project whose `preinstall` waits for `release` in its
/// directory (bounded), then fails if it says "fail".
fn held_project(home: &TestHome, name: &str) -> std::path::PathBuf {
    let d = home.dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let files = [
        (
            "package.json",
            format!(
                r#"{{"name": "{name}", "version": "1.0.0", "main": "server.js", "scripts": {{"preinstall": "node hold.js"}}}}"#
            ),
        ),
        ("server.js", "console.log('ok');\n".to_string()),
        (
            "hold.js",
            "const fs = require('fs');\n\
             const end = Date.now() + 120000;\n\
             const t = setInterval(() => {\n\
               if (fs.existsSync('release')) {\n\
                 clearInterval(t);\n\
                 process.exit(fs.readFileSync('release', 'utf8') === 'fail' ? 7 : 0);\n\
               }\n\
               if (Date.now() > end) process.exit(9);\n\
             }, 20);\n"
                .to_string(),
        ),
    ];
    for (f, body) in files {
        std::fs::write(d.join(f), body).unwrap();
    }
    d
}

/// `mcpshare add NAME --source DIR`, running (not waited for).
fn start_add(home: &TestHome, name: &str, dir: &std::path::Path) -> std::process::Child {
    let mut c = home.cmd();
    c.args(["add", name, "--source", dir.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c.spawn().unwrap()
}

/// Wait (bounded) for a child's exit; killed by pid when it overruns.
fn finish(mut child: std::process::Child) -> std::process::ExitStatus {
    let mut status = None;
    wait_until(Duration::from_secs(120), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status.unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("add --source did not finish");
    })
}

#[test]
fn installing_shows_in_list_and_status_while_add_source_runs() {
    if !available("npm", &["--version"]) {
        return;
    }
    let home = TestHome::new("names-installing");
    home.write_config(json!({"fx": fixture_entry(json!({}))}));
    // A daemon, so that status reports it too.
    let (_a, _) = home.named_client("fx");
    let marker = home.dir.join("installing").join("held");

    // A failing install: installing while it runs, its marker gone after.
    let dir = held_project(&home, "heldfail");
    let add = start_add(&home, "held", &dir);
    let pid = add.id();
    assert!(
        wait_until(WAIT * 3, || listed(&home, "held")["state"] == "installing"),
        "list never showed installing"
    );
    assert_eq!(listed(&home, "held")["installer_pid"], json!(pid));
    assert!(list_row(&home, "held").contains(" installing "));
    assert_eq!(server_status(&home, "held")["state"], "installing");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&marker).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::write(dir.join("release"), "fail").unwrap();
    assert_eq!(finish(add).code(), Some(1));
    assert!(!marker.exists(), "a failed install left its marker");
    assert_eq!(listed(&home, "held"), Value::Null);
    assert_eq!(server_status(&home, "held"), Value::Null);

    // A good one: installing, then stopped with its entry in the file.
    let dir = held_project(&home, "heldok");
    let add = start_add(&home, "held", &dir);
    assert!(wait_until(WAIT * 3, || listed(&home, "held")["state"] == "installing"));
    std::fs::write(dir.join("release"), "go").unwrap();
    assert!(finish(add).success());
    assert!(!marker.exists());
    let entry = listed(&home, "held");
    assert_eq!(
        (entry["state"].as_str(), entry["kind"].as_str()),
        (Some("stopped"), Some("stdio")),
        "{entry}"
    );
    assert!(wait_until(WAIT, || server_status(&home, "held")["state"] == "stopped"));

    // A marker whose installer is gone is ignored and removed.
    std::fs::write(&marker, format!("{} 0\n", dead_pid())).unwrap();
    assert_eq!(listed(&home, "held")["state"], "stopped");
    assert!(!marker.exists(), "a stale marker was kept");
}

/// The fixture as server entry with these tool aliases.
fn aliased(aliases: Value) -> Value {
    fixture_entry(json!({"mcpshare": {"aliases": aliases}}))
}

#[test]
fn hub_names_stay_across_a_restart_and_a_newcomer_that_would_take_them() {
    let home = TestHome::new("names-hub");
    let long = "create_or_update_entities_with_relations_and_observations_v2";
    home.write_config(json!({"s": aliased(json!({"echo": long}))}));
    let name = {
        let mut h = hub(&home, &[]);
        let names = tool_names(&mut h, "l");
        let shortened: Vec<&String> = names.iter().filter(|n| n.contains("__create_or")).collect();
        assert_eq!(shortened.len(), 1, "{names:?}");
        shortened[0].clone()
    };
    assert!(name.len() <= 49 && name.starts_with("s__"), "{name}");
    let file = home.dir.join("catalog").join("_names.json");
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(text.contains(&name), "{text}");
    assert!(home.mcpshare(&["stop"]).status.success());

    // A new tool whose plain name is echo's shortened one: made afresh,
    // it would take that name and echo's would change.
    let plain = name.strip_prefix("s__").unwrap();
    home.write_config(json!({"s": aliased(json!({"echo": long, "add": plain}))}));
    let mut h = hub(&home, &[]);
    // The catalog lists s as last seen (without add) until s runs again.
    tool_names(&mut h, "stale");
    let pid: u32 = h.call_text(json!(0), "s__pid", json!({})).parse().unwrap();
    home.seen_upstreams.lock().unwrap().push(pid);
    let names = tool_names(&mut h, "again");
    let shortened: Vec<&String> = names.iter().filter(|n| n.contains("__create_or")).collect();
    assert_eq!(shortened.len(), 2, "{names:?}");
    assert!(shortened.contains(&&name), "{name} changed: {names:?}");
    assert_eq!(h.call_text(json!(1), &name, json!({"text": "hi"})), "hi");
    let other = shortened.iter().find(|n| ***n != name).unwrap();
    assert_eq!(h.call_text(json!(2), other, json!({"a": 1, "b": 2})), "3");

    // A server that leaves the config takes its names along.
    home.write_config(json!({"t": fixture_entry(json!({}))}));
    assert!(home.mcpshare(&["reload"]).status.success());
    assert!(
        wait_until(WAIT, || !std::fs::read_to_string(&file)
            .unwrap_or_default()
            .contains(&name)),
        "{}",
        std::fs::read_to_string(&file).unwrap_or_default()
    );
}

#[test]
fn a_corrupt_names_file_is_ignored_and_the_hub_serves() {
    let home = TestHome::new("names-corrupt");
    home.write_config(json!({"s": fixture_entry(json!({}))}));
    let file = home.dir.join("catalog").join("_names.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "{\"tools\": [").unwrap();
    let mut h = hub(&home, &[]);
    let names = tool_names(&mut h, "l");
    assert!(names.contains(&"s__echo".to_string()), "{names:?}");
    assert_eq!(
        h.call_text(json!(1), "s__echo", json!({"text": "hi"})),
        "hi"
    );
    assert!(
        home.log().contains("hub names are made afresh"),
        "{}",
        home.log()
    );
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(text.contains("s__echo"), "the file is made again: {text}");
}
