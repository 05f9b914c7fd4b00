//! The config file through the real binary: add, remove, enable, disable,
//! list and edit, with MCPSHARE_CONFIG (or HOME and XDG_CONFIG_HOME) in a
//! temp dir; `add --source` on small node and python projects made here,
//! installed without the network.

use crate::common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A dependency install (venv creation, npm) on a busy machine.
const INSTALL_WAIT: Duration = Duration::from_secs(180);

struct Cfg {
    home: TestHome,
    path: PathBuf,
}

impl Cfg {
    fn new(name: &str) -> Cfg {
        let home = TestHome::new(name);
        let path = home.dir.join("cfg").join("config.json");
        Cfg { home, path }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.home.cmd();
        c.args(args)
            .env("MCPSHARE_CONFIG", &self.path)
            .env("HOME", self.home.dir.join("user"))
            .env("XDG_CONFIG_HOME", self.home.dir.join("xdg"))
            .env("PIP_NO_INDEX", "1")
            .env_remove("VISUAL")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        run_bounded(self.cmd(args), WAIT)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run a command that must fail with status 1; its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        String::from_utf8(out.stderr).unwrap()
    }

    fn write(&self, text: &str) {
        std::fs::create_dir_all(self.path.parent().unwrap()).unwrap();
        std::fs::write(&self.path, text).unwrap();
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text()).unwrap()
    }

    fn names(&self) -> Vec<String> {
        let list: Value = serde_json::from_str(&self.ok(&["list", "--json"])).unwrap();
        list["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    }
}

const HAND_MADE: &str = "{\n    \"globalShortcut\": \"Ctrl+Space\",\n    \"mcpServers\": {\n        \"first\": {\"command\": \"sh\",   \"args\": [\"-c\", \"echo }{\\\"\"], \"autoApprove\": [\"x\"]},\n        \"second\": {\n            \"type\": \"sse\", \"url\": \"https://example.invalid/sse\",\n            \"x-note\": {\"kept\": true}\n        }\n    },\n    \"zzz\": [1, 2]\n}\n";

#[test]
fn add_remove_and_list_keep_untouched_entries_byte_for_byte() {
    let c = Cfg::new("cfg-roundtrip");
    c.write(HAND_MADE);
    let first = "\"first\": {\"command\": \"sh\",   \"args\": [\"-c\", \"echo }{\\\"\"], \"autoApprove\": [\"x\"]}";
    let second = "\"second\": {\n            \"type\": \"sse\", \"url\": \"https://example.invalid/sse\",\n            \"x-note\": {\"kept\": true}\n        }";
    assert!(HAND_MADE.contains(first) && HAND_MADE.contains(second));

    c.ok(&[
        "add", "third", "-e", "K=v", "--eager", "--share", "per-cwd", "--", "sh", "-c", "true",
    ]);
    let after_add = c.text();
    assert!(
        after_add.contains(first) && after_add.contains(second),
        "{after_add}"
    );
    assert!(after_add.starts_with("{\n    \"globalShortcut\": \"Ctrl+Space\",\n"));
    assert!(
        after_add.ends_with("    },\n    \"zzz\": [1, 2]\n}\n"),
        "{after_add}"
    );
    // The new entry is laid out like its neighbours (8 spaces, 4 a level).
    assert!(
        after_add.contains(",\n        \"third\": {\n            \"command\": \"sh\","),
        "{after_add}"
    );
    let third = &c.json()["mcpServers"]["third"];
    assert_eq!(third["args"], json!(["-c", "true"]));
    assert_eq!(third["env"], json!({"K": "v"}));
    assert_eq!(
        third["mcpshare"],
        json!({"share": "per-cwd", "lazy": false})
    );
    assert_eq!(c.names(), ["first", "second", "third"]);

    c.ok(&["disable", "second"]);
    assert!(c.text().contains(first));
    assert_eq!(
        c.json()["mcpServers"]["second"]["mcpshare"]["enabled"],
        json!(false)
    );
    assert_eq!(
        c.json()["mcpServers"]["second"]["x-note"],
        json!({"kept": true})
    );
    c.ok(&["enable", "second"]);
    assert_eq!(
        c.json()["mcpServers"]["second"]["mcpshare"]["enabled"],
        json!(true)
    );

    c.ok(&["remove", "third"]);
    c.ok(&["remove", "second"]);
    let back = c.text();
    assert!(back.contains(first), "{back}");
    assert_eq!(c.names(), ["first"]);
    assert_eq!(c.json()["globalShortcut"], "Ctrl+Space");
    assert_eq!(c.json()["zzz"], json!([1, 2]));

    let list: Value = serde_json::from_str(&c.ok(&["list", "--json"])).unwrap();
    assert_eq!(list["config"], json!(c.path.to_string_lossy()));
    let s = &list["servers"][0];
    assert_eq!(
        (
            s["kind"].clone(),
            s["enabled"].clone(),
            s["lazy"].clone(),
            s["share"].clone()
        ),
        (json!("stdio"), json!(true), json!(true), json!("shared"))
    );
    assert_eq!(s["command"], "sh");
    c.fails(&["remove", "second"]);
}

#[cfg(unix)]
#[test]
fn the_file_is_private_and_found_under_xdg_config_home_or_home() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let c = Cfg::new("cfg-paths");
    let mut cmd = c.cmd(&["add", "a", "--", "sh"]);
    cmd.env_remove("MCPSHARE_CONFIG");
    assert!(run_bounded(cmd, WAIT).status.success());
    let xdg = c.home.dir.join("xdg").join("mcpshare").join("config.json");
    assert_eq!(mode(&xdg), 0o600);
    assert_eq!(mode(xdg.parent().unwrap()), 0o700);

    let mut cmd = c.cmd(&["add", "b", "--", "sh"]);
    cmd.env_remove("MCPSHARE_CONFIG")
        .env_remove("XDG_CONFIG_HOME");
    assert!(run_bounded(cmd, WAIT).status.success());
    let home = c.home.dir.join("user/.config/mcpshare/config.json");
    assert!(std::fs::read_to_string(home).unwrap().contains("\"b\""));
    assert!(!std::fs::read_to_string(&xdg).unwrap().contains("\"b\""));

    c.write("{}");
    std::fs::set_permissions(&c.path, std::fs::Permissions::from_mode(0o644)).unwrap();
    c.ok(&["add", "c", "--", "sh"]);
    assert_eq!(mode(&c.path), 0o600, "a rewrite makes the file private");
}

#[test]
fn concurrent_adds_all_land() {
    let c = Cfg::new("cfg-concurrent");
    c.write("{\"mcpServers\": {}}\n");
    let names: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
    let children: Vec<_> = names
        .iter()
        .map(|n| {
            c.cmd(&["add", n, "--", "sh", "-c", n])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(WAIT) {
            Ok(out) => {
                let out = out.unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Err(_) => {
                signal(pid, libc::SIGKILL);
                panic!("add pid {pid} did not finish");
            }
        }
    }
    let mut got = c.names();
    got.sort();
    assert_eq!(got, names);
}

#[test]
fn invalid_json_is_reported_with_line_and_column_and_never_overwritten() {
    let c = Cfg::new("cfg-invalid");
    let bad = "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"sh\",}\n  }\n}\n";
    c.write(bad);
    let where_ = format!("{}:3:27: invalid JSON", c.path.display());
    for args in [
        &["add", "b", "--", "sh"][..],
        &["remove", "a"],
        &["disable", "a"],
        &["list"],
        &["list", "--json"],
    ] {
        let err = c.fails(args);
        assert!(err.contains(&where_), "{args:?}: {err}");
        assert_eq!(c.text(), bad, "{args:?} wrote the invalid file");
    }
}

#[test]
fn bad_input_is_refused_and_nothing_is_written() {
    let c = Cfg::new("cfg-refused");
    let good = "{\"mcpServers\": {\"a\": {\"command\": \"sh\"}}}";
    c.write(good);
    let path = c.path.display().to_string();
    for (args, says) in [
        (
            &["add", "Bad_Name", "--", "sh"][..],
            "server 'Bad_Name': the name 'Bad_Name' has 'B'",
        ),
        (&["add", "x-", "--", "sh"], "starts or ends with '-'"),
        (
            &["add", "a", "--", "sh"],
            "server 'a': a server of this name is already in the file",
        ),
        (
            &["add", "b", "--", "mcpshare-no-such-command"],
            "server 'b': command not found: mcpshare-no-such-command",
        ),
        (
            &["add", "c", "--", "./no-such-script.sh"],
            "command not found",
        ),
        (
            &["add", "d", "--url", "ftp://h"],
            "not an http:// or https:// URL",
        ),
        (&["remove", "zz"], "server 'zz': no such server"),
        (&["enable", "zz"], "server 'zz': no such server"),
    ] {
        let err = c.fails(args);
        assert!(err.contains(&path) && err.contains(says), "{args:?}: {err}");
        assert!(err.contains("\nhint: "), "{args:?}: {err}");
        assert_eq!(c.text(), good, "{args:?}");
    }
    // Usage problems exit 2 and write nothing either.
    let out = c.run(&["add", "e"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(c.text(), good);

    let unknown =
        "{\"mcpServers\": {\"a\": {\"command\": \"sh\",\n  \"mcpshare\": {\"lazzy\": false}}}}";
    c.write(unknown);
    let err = c.fails(&["list"]);
    assert!(
        err.contains(&format!("{path}:2:16: server 'a': unknown key \"lazzy\" in \"mcpshare\"; known keys: share, lazy,")),
        "{err}"
    );
    c.fails(&["add", "b", "--", "sh"]);
    assert_eq!(c.text(), unknown);
}

#[test]
fn list_never_prints_secret_values() {
    let c = Cfg::new("cfg-secrets");
    c.ok(&[
        "add",
        "a",
        "-e",
        "API_KEY=sk-live-123",
        "-e",
        "REF=${MY_TOKEN}",
        "--",
        "sh",
    ]);
    c.ok(&[
        "add",
        "r",
        "--url",
        "http://h.invalid/mcp",
        "--header",
        "Authorization: Bearer sk-live-456",
    ]);
    c.write(
        &c.text()
            .replace("\"REF\"", "\"DEF\": \"${X:-sk-live-789}\", \"REF\""),
    );
    let table = c.ok(&["list"]);
    let json = c.ok(&["list", "--json"]);
    for out in [&table, &json] {
        assert!(!out.contains("sk-live"), "{out}");
    }
    assert!(
        table.contains("API_KEY=<hidden>") && table.contains("REF=${MY_TOKEN}"),
        "{table}"
    );
    assert!(
        table.contains("DEF=${X:-…}") && table.contains("Authorization: <hidden>"),
        "{table}"
    );
    assert!(
        c.text().contains("sk-live-123"),
        "the file keeps the value itself"
    );
}

/// An EDITOR that runs `script` with the file to edit as $1.
fn editor(c: &Cfg, script: &str) -> String {
    let p = c.home.dir.join(format!("editor-{}.sh", script.len()));
    std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    p.display().to_string()
}

fn edit_with(c: &Cfg, script: &str) -> Output {
    let mut cmd = c.cmd(&["edit"]);
    cmd.env("EDITOR", editor(c, script));
    run_bounded(cmd, WAIT)
}

#[test]
fn edit_saves_a_valid_file_and_refuses_an_invalid_one() {
    let c = Cfg::new("cfg-edit");
    c.write("{\"mcpServers\": {}}");
    let valid = "{\"mcpServers\": {\"e\": {\"command\": \"sh\"}}, \"mine\": 1}";
    let out = edit_with(&c, &format!("printf '%s' '{valid}' > \"$1\""));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(c.text(), valid);

    let out = edit_with(
        &c,
        "printf '{\\n\"mcpServers\": {\\n\"x\": nope}}' > \"$1\"",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:3:7: invalid JSON", c.path.display())),
        "{err}"
    );
    assert!(err.contains("the file was not changed"), "{err}");
    assert_eq!(c.text(), valid);
    let kept = |err: &str| -> String {
        err.lines()
            .find_map(|l| l.strip_prefix("mcpshare: your edit is kept in "))
            .unwrap_or_else(|| panic!("the edit is not kept: {err}"))
            .to_string()
    };
    std::fs::remove_file(kept(&err)).unwrap();

    let out = edit_with(
        &c,
        "printf '{\"mcpServers\": {\"x\": {\"command\": \"sh\", \"mcpshare\": {\"nope\": 1}}}}' > \"$1\"",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("unknown key \"nope\""), "{err}");
    assert_eq!(c.text(), valid);
    // The edit that could not be saved is kept, and named.
    let kept = kept(&err);
    assert!(std::fs::read_to_string(&kept).unwrap().contains("nope"));
    std::fs::remove_file(kept).unwrap();

    let out = edit_with(&c, "exit 3");
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(c.text(), valid);
    let leftovers: Vec<_> = std::fs::read_dir(c.path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("edit"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The editor saves its copy and, before it exits, the file itself is
/// changed by hand: the hand edit stays, and the editor's text is kept
/// aside and named.
#[test]
fn edit_never_loses_a_hand_edit_made_meanwhile() {
    let c = Cfg::new("cfg-edit-race");
    c.write("{\"mcpServers\": {}}");
    let hand = "{\"mcpServers\": {\"hand\": {\"command\": \"sh\"}}}";
    let mine = "{\"mcpServers\": {\"mine\": {\"command\": \"sh\"}}}";
    let script = format!(
        "printf '%s' '{mine}' > \"$1\"\nprintf '%s' '{hand}' > '{}'",
        c.path.display()
    );
    let out = edit_with(&c, &script);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("changed while"), "{err}");
    assert_eq!(c.text(), hand);
    let kept = err
        .lines()
        .find_map(|l| l.strip_prefix("mcpshare: your edit is kept in "))
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(std::fs::read_to_string(kept).unwrap(), mine);
}

fn project(c: &Cfg, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let d = c.home.dir.join(name);
    for (f, body) in files {
        let p = d.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    d
}

fn add_source(c: &Cfg, args: &[&str]) -> Output {
    run_bounded(c.cmd(args), INSTALL_WAIT)
}

/// Run the entry `add --source` wrote, as the daemon will; its stdout.
fn run_entry(entry: &Value) -> String {
    let mut cmd = Command::new(entry["command"].as_str().unwrap());
    cmd.args(
        entry["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap()),
    )
    .current_dir(entry["cwd"].as_str().unwrap())
    .stdin(Stdio::null());
    let out = run_bounded(cmd, WAIT);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn add_source_installs_a_node_project_with_a_local_dependency() {
    if !available("npm", &["--version"]) {
        return;
    }
    let c = Cfg::new("cfg-node");
    let dir = project(
        &c,
        "nodeproj",
        &[
            (
                "package.json",
                r#"{"name": "srv", "version": "1.0.0", "main": "lib/server.js", "dependencies": {"dep": "file:./dep"}}"#,
            ),
            (
                "lib/server.js",
                "console.log('answer ' + require('dep'));\n",
            ),
            (
                "dep/package.json",
                r#"{"name": "dep", "version": "1.0.0", "main": "index.js"}"#,
            ),
            ("dep/index.js", "module.exports = 42;\n"),
        ],
    );
    let out = add_source(&c, &["add", "nodesrv", "--source", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("node_modules/dep").exists());
    let dir = dir.canonicalize().unwrap();
    let entry = &c.json()["mcpServers"]["nodesrv"];
    assert_eq!(entry["command"], "node");
    assert_eq!(entry["args"], json!([dir.join("lib/server.js")]));
    assert_eq!(entry["cwd"], json!(dir));
    assert_eq!(entry["mcpshare"], json!({"runtime": "node", "source": dir}));
    assert_eq!(run_entry(entry), "answer 42\n");
}

#[test]
fn add_source_makes_a_virtual_environment_for_a_python_project() {
    if !available("python3", &["-m", "venv", "--help"]) {
        return;
    }
    let c = Cfg::new("cfg-python");
    let dir = project(
        &c,
        "pyproj",
        &[
            ("requirements.txt", "# no dependencies\n"),
            ("src/server.py", "import sys\nprint(sys.prefix)\n"),
        ],
    );
    let out = add_source(&c, &["add", "pysrv", "--source", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = dir.canonicalize().unwrap();
    let env = c.path.parent().unwrap().join("envs").join("pysrv");
    let entry = &c.json()["mcpServers"]["pysrv"];
    assert_eq!(entry["command"], json!(env.join("bin/python")));
    assert_eq!(entry["args"], json!([dir.join("src/server.py")]));
    assert_eq!(entry["mcpshare"]["runtime"], "python");
    // The server runs in its own environment, not the user's python.
    assert_eq!(run_entry(entry).trim_end(), env.to_str().unwrap());
}

#[test]
fn a_failing_install_names_the_status_and_stderr_and_writes_nothing() {
    if !available("python3", &["-m", "venv", "--help"]) {
        return;
    }
    let c = Cfg::new("cfg-install-fails");
    let before = "{\"mcpServers\": {\"a\": {\"command\": \"sh\"}}}";
    c.write(before);
    let dir = project(
        &c,
        "broken",
        &[
            ("requirements.txt", "mcpshare-no-such-package-zz==1.0\n"),
            ("server.py", ""),
        ],
    );
    let out = add_source(&c, &["add", "broken", "--source", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server 'broken'") && err.contains("pip install"),
        "{err}"
    );
    assert!(err.contains("failed (exit status 1)"), "{err}");
    assert!(
        err.contains("mcpshare-no-such-package-zz"),
        "the stderr tail: {err}"
    );
    assert!(err.contains("the config was not changed"), "{err}");
    assert_eq!(c.text(), before);

    let empty = project(&c, "empty", &[("README.md", "")]);
    let err = c.fails(&["add", "nothing", "--source", empty.to_str().unwrap()]);
    assert!(
        err.contains("no runtime detected") && err.contains("--runtime"),
        "{err}"
    );
    assert_eq!(c.text(), before);
}
