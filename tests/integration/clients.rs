//! `clients`, `import`, `connect`, `disconnect` on a temp HOME holding a
//! realistic config file for each of the nine clients.

use crate::common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const FILESYSTEM: &str = r#"["-y", "@modelcontextprotocol/server-filesystem", "/home/ann"]"#;

/// Every client's file, relative to HOME, and its text.
fn files() -> Vec<(&'static str, String)> {
    vec![
        (
            ".config/Claude/claude_desktop_config.json",
            format!(
                r#"{{
  "globalShortcut": "Ctrl+Space",
  "mcpServers": {{
    "filesystem": {{
      "command": "npx",
      "args": {FILESYSTEM}
    }},
    "github": {{
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-github"],
      "env": {{"GITHUB_TOKEN": "${{GITHUB_TOKEN}}"}}
    }}
  }}
}}
"#
            ),
        ),
        (
            ".claude.json",
            format!(
                r#"{{"numStartups": 12, "mcpServers": {{"filesystem": {{"type": "stdio", "command": "npx", "args": {FILESYSTEM}, "env": {{}}}}}}, "projects": {{"/work/a": {{"allowedTools": [], "mcpServers": {{"db": {{"type": "stdio", "command": "db-mcp", "args": ["--ro"], "env": {{"DB_URL": "${{DB_URL:-postgres://localhost}}"}}}}}}, "history": [{{"display": "hi"}}]}}, "/work/b": {{"mcpServers": {{}}}}, "/work/c": {{"mcpServers": {{"remote": {{"type": "http", "url": "https://mcp.example.com/mcp", "headers": {{"Authorization": "Bearer ${{TOKEN}}"}}}}}}}}}}, "userID": "abc"}}"#
            ),
        ),
        (
            ".cursor/mcp.json",
            format!(
                r#"{{
    "mcpServers": {{
        "FileSystem": {{
            "command": "npx",
            "args": {FILESYSTEM}
        }},
        "github": {{
            "command": "docker",
            "args": ["run", "-i", "ghcr.io/github/github-mcp-server"],
            "env": {{"GITHUB_TOKEN": "${{env:GITHUB_TOKEN}}"}}
        }},
        "web": {{"url": "https://example.com/mcp"}}
    }},
    "unknownKey": [1, 2, 3]
}}
"#
            ),
        ),
        (
            ".config/Code/User/mcp.json",
            format!(
                "{{\n\t\"inputs\": [\n\t\t{{\"type\": \"promptString\", \"id\": \"api-key\", \"description\": \"API key\", \"password\": true}}\n\t],\n\t\"servers\": {{\n\t\t\"fs\": {{\"type\": \"stdio\", \"command\": \"npx\", \"args\": {FILESYSTEM}}},\n\t\t\"keyed\": {{\"type\": \"stdio\", \"command\": \"keyed-server\", \"env\": {{\"KEY\": \"${{input:api-key}}\"}}}}\n\t}}\n}}\n"
            ),
        ),
        (
            ".codeium/windsurf/mcp_config.json",
            r#"{"mcpServers": {"search": {"command": "uvx", "args": ["search-mcp"], "disabled": true}, "docs": {"serverUrl": "https://docs.example.com/mcp"}}}"#.to_string(),
        ),
        (
            ".config/zed/settings.json",
            "// Zed settings\n{\n  \"theme\": \"One Dark\", // dark\n  \"context_servers\": {\n    \"git\": {\"command\": {\"path\": \"uvx\", \"args\": [\"mcp-server-git\"], \"env\": {}}, \"settings\": {}},\n  },\n}\n".to_string(),
        ),
        (
            ".codex/config.toml",
            format!(
                "model = \"o3\" # default\n\n[profiles.fast]\nmodel = \"gpt-5\"\n\n[mcp_servers.fs]\ncommand = \"npx\"\nargs = {FILESYSTEM}\nstartup_timeout_sec = 20\n\n[mcp_servers.fs.env]\nMODE = \"ro\"\n\n[tui]\ntheme = \"dark\"\n"
            ),
        ),
        (
            ".gemini/settings.json",
            r#"{
  "theme": "GitHub",
  "mcpServers": {
    "fetch": {"command": "uvx", "args": ["mcp-server-fetch"], "timeout": 30000},
    "events": {"url": "http://localhost:8080/sse"}
  }
}
"#
            .to_string(),
        ),
        (
            ".config/Code/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json",
            format!(
                r#"{{
  "mcpServers": {{
    "filesystem": {{
      "command": "npx",
      "args": {FILESYSTEM},
      "disabled": false,
      "autoApprove": ["read_file"],
      "timeout": 60
    }}
  }}
}}
"#
            ),
        ),
    ]
}

/// A temp HOME with the clients' files, a project directory, and the
/// mcpshare home.
struct Machine {
    th: TestHome,
    home: PathBuf,
    project: PathBuf,
}

impl Machine {
    fn new(name: &str, with: &[(&str, String)]) -> Machine {
        let th = TestHome::new(name);
        let home = th.dir.with_extension("user");
        let _ = std::fs::remove_dir_all(&home);
        let project = home.join("project");
        std::fs::create_dir_all(&project).unwrap();
        for (rel, text) in with {
            let p = home.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Machine { th, home, project }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// [`Machine::run`] with more variables set, as a user exports them.
    fn run_with(&self, args: &[&str], vars: &[(&str, &Path)]) -> Output {
        let mut c = self.th.cmd();
        c.args(args)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("PATH", "/usr/bin:/bin")
            .env_remove("MCPSHARE_CONFIG")
            .env_remove("CODEX_HOME")
            .env_remove("APPDATA")
            .current_dir(&self.project)
            .stdin(Stdio::null());
        for (k, v) in vars {
            c.env(k, v);
        }
        run_bounded(c, WAIT)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, &[])
    }

    fn ok_with(&self, args: &[&str], vars: &[(&str, &Path)]) -> String {
        let out = self.run_with(args, vars);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?} failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.home.join(rel)).unwrap()
    }

    fn snapshot(&self) -> BTreeMap<String, String> {
        files()
            .iter()
            .map(|(rel, _)| (rel.to_string(), self.read(rel)))
            .collect()
    }

    fn config(&self) -> Value {
        let p = self.home.join(".config/mcpshare/config.json");
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    fn records(&self) -> usize {
        std::fs::read_dir(self.th.dir.join("clients")).map_or(0, |d| d.count())
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn json_at<'a>(v: &'a Value, keys: &[&str]) -> &'a Value {
    keys.iter().fold(v, |v, k| &v[k])
}

/// The hub entry connect writes: this mcpshare's absolute path, `mcp`.
fn assert_hub(entry: &Value, what: &str) {
    let exe = Path::new(BIN).canonicalize().unwrap();
    assert_eq!(
        entry["command"],
        json!(exe.to_string_lossy()),
        "{what}: {entry}"
    );
    assert_eq!(entry["args"], json!(["mcp"]), "{what}: {entry}");
}

#[test]
fn import_connect_disconnect_round_trip_leaves_every_file_byte_identical() {
    let m = Machine::new("clients-round-trip", &files());
    let before = m.snapshot();

    let listed: Value = serde_json::from_str(&m.ok(&["clients", "--json"])).unwrap();
    let row = |id: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["client"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(listed.as_array().unwrap().len(), 9);
    for (id, n) in [
        ("claude-desktop", 2),
        ("claude-code", 3),
        ("cursor", 3),
        ("vscode", 2),
        ("zed", 1),
        ("codex", 1),
        ("gemini", 2),
        ("cline", 1),
        ("windsurf", 2),
    ] {
        assert_eq!(row(id)["servers"], json!(n), "{id}: {}", row(id));
        assert_eq!(row(id)["connected"], json!(false), "{id}");
    }

    let report = m.ok(&["import"]);
    let servers = m.config()["mcpServers"].clone();
    let names: Vec<&String> = servers.as_object().unwrap().keys().collect();
    // The filesystem server of five clients is one entry; Cursor's other
    // github takes a suffix; VS Code's prompt-backed server stays there.
    let filesystem: Vec<_> = servers
        .as_object()
        .unwrap()
        .values()
        .filter(|s| {
            s["args"] == serde_json::from_str::<Value>(FILESYSTEM).unwrap()
                && s.get("env").is_none()
        })
        .collect();
    assert_eq!(filesystem.len(), 1, "{servers:#}");
    assert!(
        servers.get("github-2").is_some() && report.contains("renamed"),
        "{report}"
    );
    assert!(
        report.contains("skipped") && report.contains("${input:api-key}"),
        "{report}"
    );
    assert_eq!(
        servers["github-2"]["env"]["GITHUB_TOKEN"], "${GITHUB_TOKEN}",
        "a reference stays a reference"
    );
    assert_eq!(
        servers["db"]["env"]["DB_URL"],
        "${DB_URL:-postgres://localhost}"
    );
    assert_eq!(servers["search"]["mcpshare"]["enabled"], json!(false));
    assert_eq!(
        servers["fetch"]["mcpshare"]["request_timeout_secs"],
        json!(30)
    );
    assert_eq!(servers["fs"]["mcpshare"]["start_timeout_secs"], json!(20));
    assert_eq!(servers["events"]["type"], "sse");
    assert_eq!(
        servers["remote"]["headers"]["Authorization"],
        "Bearer ${TOKEN}"
    );
    assert!(!names.iter().any(|n| n.contains("keyed")), "{names:?}");
    // Importing again finds nothing new.
    m.ok(&["import"]);
    assert_eq!(m.config()["mcpServers"], servers);

    m.ok(&["connect", "--all"]);
    let desktop: Value =
        serde_json::from_str(&m.read(".config/Claude/claude_desktop_config.json")).unwrap();
    assert_hub(&desktop["mcpServers"]["mcpshare"], "claude-desktop");
    assert_eq!(desktop["mcpServers"].as_object().unwrap().len(), 1);
    assert_eq!(desktop["globalShortcut"], "Ctrl+Space");
    let code: Value = serde_json::from_str(&m.read(".claude.json")).unwrap();
    assert_hub(&code["mcpServers"]["mcpshare"], "claude-code");
    assert_eq!(
        json_at(&code, &["projects", "/work/a", "mcpServers"]),
        &json!({}),
        "the local server is served by the hub"
    );
    assert!(
        json_at(&code, &["projects", "/work/c", "mcpServers", "remote"]).is_object(),
        "remote servers stay"
    );
    assert_eq!(
        code["projects"]["/work/a"]["history"],
        json!([{"display": "hi"}])
    );
    let vscode = m.read(".config/Code/User/mcp.json");
    let v: Value = serde_json::from_str(&vscode).unwrap();
    assert_hub(&v["servers"]["mcpshare"], "vscode");
    assert_eq!(v["servers"]["mcpshare"]["type"], "stdio");
    assert!(v["servers"].get("keyed").is_some() && v["servers"].get("fs").is_none());
    assert!(
        vscode.starts_with("{\n\t\"inputs\": [\n\t\t{\"type\": \"promptString\""),
        "inputs kept as they are:\n{vscode}"
    );
    assert!(
        vscode.contains("\n\t\t\"mcpshare\": {\n\t\t\t\"type\""),
        "the file's tab indentation:\n{vscode}"
    );
    let zed = m.read(".config/zed/settings.json");
    assert!(
        zed.starts_with("// Zed settings\n{\n  \"theme\": \"One Dark\", // dark\n"),
        "{zed}"
    );
    let codex = m.read(".codex/config.toml");
    let cs = mcpshare::clients::codex::servers(&codex).unwrap();
    assert_eq!(cs.len(), 1, "{codex}");
    assert!(
        codex.contains("[profiles.fast]\nmodel = \"gpt-5\"\n")
            && codex.contains("[tui]\ntheme = \"dark\"\n"),
        "{codex}"
    );
    let windsurf: Value =
        serde_json::from_str(&m.read(".codeium/windsurf/mcp_config.json")).unwrap();
    assert!(
        windsurf["mcpServers"].get("docs").is_some(),
        "remote servers stay: {windsurf}"
    );
    let listed: Value = serde_json::from_str(&m.ok(&["clients", "--json"])).unwrap();
    for r in listed.as_array().unwrap() {
        assert_eq!(r["connected"], json!(true), "{r}");
    }

    // Connect twice is a no-op.
    let connected = m.snapshot();
    let again = m.ok(&["connect", "--all"]);
    assert_eq!(m.snapshot(), connected);
    assert_eq!(again.matches("already connected").count(), 9, "{again}");

    m.ok(&["disconnect", "--all"]);
    for (rel, text) in &before {
        assert_eq!(&m.read(rel), text, "{rel} is not as it was");
    }
    assert_eq!(m.records(), 0, "disconnect forgets its records");
}

#[test]
fn a_user_edit_between_connect_and_disconnect_survives() {
    let m = Machine::new("clients-edit", &files());
    m.ok(&["import"]);
    m.ok(&["connect", "claude-desktop", "codex", "cursor"]);
    let edit = |rel: &str, from: &str, to: &str| {
        let t = m.read(rel);
        assert!(t.contains(from), "{rel}: {t}");
        std::fs::write(m.home.join(rel), t.replacen(from, to, 1)).unwrap();
    };
    edit(
        ".config/Claude/claude_desktop_config.json",
        "Ctrl+Space",
        "Alt+Space",
    );
    edit(
        ".codex/config.toml",
        "theme = \"dark\"",
        "theme = \"light\"",
    );
    edit(
        ".cursor/mcp.json",
        "\"web\": {\"url\": \"https://example.com/mcp\"}",
        "\"web\": {\"url\": \"https://example.com/v2\"}",
    );
    m.ok(&["disconnect", "claude-desktop", "codex", "cursor"]);

    let desktop: Value =
        serde_json::from_str(&m.read(".config/Claude/claude_desktop_config.json")).unwrap();
    assert_eq!(desktop["globalShortcut"], "Alt+Space");
    let original: Value = serde_json::from_str(&files()[0].1).unwrap();
    assert_eq!(
        desktop["mcpServers"], original["mcpServers"],
        "the replaced entries are back, ours is gone"
    );
    let codex = m.read(".codex/config.toml");
    assert!(codex.contains("theme = \"light\""), "{codex}");
    assert_eq!(
        mcpshare::clients::codex::servers(&codex).unwrap(),
        mcpshare::clients::codex::servers(&files()[6].1).unwrap()
    );
    assert!(
        codex.contains("[mcp_servers.fs]\ncommand = \"npx\"\n"),
        "put back as written:\n{codex}"
    );
    let cursor: Value = serde_json::from_str(&m.read(".cursor/mcp.json")).unwrap();
    assert_eq!(cursor["mcpServers"]["web"]["url"], "https://example.com/v2");
    assert_eq!(
        cursor["mcpServers"].as_object().unwrap().len(),
        3,
        "{cursor}"
    );
    assert!(cursor["mcpServers"].get("mcpshare").is_none());
}

#[test]
fn dry_run_writes_nothing() {
    let m = Machine::new("clients-dry", &files());
    let before = m.snapshot();
    let out = m.ok(&["import", "--dry-run"]);
    assert!(out.contains("--dry-run"), "{out}");
    assert!(!m.home.join(".config/mcpshare/config.json").exists());
    m.ok(&["import"]);
    let out = m.ok(&["connect", "--all", "--dry-run"]);
    assert!(
        out.contains("+++ ") && out.contains("\"mcpshare\""),
        "the diff is shown:\n{out}"
    );
    assert_eq!(m.snapshot(), before);
    assert_eq!(m.records(), 0);
}

#[test]
fn a_file_that_is_not_valid_json_or_toml_is_refused() {
    let broken = "{\"mcpServers\": {\"a\": {\"command\": \"x\",}}";
    let m = Machine::new(
        "clients-invalid",
        &[
            (".cursor/mcp.json", broken.to_string()),
            (
                ".codex/config.toml",
                "[mcp_servers.a\ncommand = 1\n".to_string(),
            ),
        ],
    );
    for client in ["cursor", "codex"] {
        let out = m.run(&["connect", client]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&m.home.to_string_lossy().to_string()) && err.contains("hint:"),
            "{err}"
        );
    }
    assert!(
        String::from_utf8_lossy(&m.run(&["connect", "cursor"]).stderr).contains("invalid JSON")
    );
    assert_eq!(m.read(".cursor/mcp.json"), broken);
    assert_eq!(m.records(), 0);
}

#[test]
fn a_file_changed_between_read_and_write_is_refused() {
    let m = Machine::new("clients-race", &[]);
    let p = m.home.join("mcp.json");
    std::fs::write(&p, "{\"mcpServers\": {}}\n").unwrap();
    let read = std::fs::read_to_string(&p).unwrap();
    // A client saves after mcpshare read the file.
    std::fs::write(&p, "{\"mcpServers\": {\"new\": {\"command\": \"x\"}}}\n").unwrap();
    let e = mcpshare::clients::record::replace(&p, Some(&read), "{}\n").unwrap_err();
    assert!(
        e.to_string().contains("changed while mcpshare was writing"),
        "{e}"
    );
    assert!(std::fs::read_to_string(&p).unwrap().contains("\"new\""));
    // Unchanged, it is written.
    let now = std::fs::read_to_string(&p).unwrap();
    mcpshare::clients::record::replace(&p, Some(&now), "{}\n").unwrap();
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "{}\n");
}

/// The names of the tools a client started from `command args` sees
/// (first page), with the test's mcpshare home.
fn tools_of(m: &Machine, command: &str, args: &[String]) -> Vec<String> {
    let mut c = Command::new(command);
    c.args(args)
        .env("MCPSHARE_HOME", &m.th.dir)
        .current_dir(&m.project);
    let mut b = Bridge::spawn(c);
    b.initialize();
    let r = b.request(json!(1), "tools/list", json!({}));
    b.close_stdin();
    b.wait_exit(WAIT);
    r["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_wrapped_entry_reaches_the_same_tools() {
    let fixture = fixture().to_string_lossy().into_owned();
    let cursor = format!(
        "{{\n  \"mcpServers\": {{\n    \"fixture\": {{\"command\": {}, \"args\": []}}\n  }}\n}}\n",
        json!(fixture)
    );
    let m = Machine::new("clients-wrap", &[(".cursor/mcp.json", cursor.clone())]);
    let direct = tools_of(&m, &fixture, &[]);
    m.ok(&["connect", "--mode", "wrap", "cursor"]);
    let v: Value = serde_json::from_str(&m.read(".cursor/mcp.json")).unwrap();
    let entry = &v["mcpServers"]["fixture"];
    let args: Vec<String> = serde_json::from_value(entry["args"].clone()).unwrap();
    assert_eq!(args, ["run", "--", fixture.as_str()]);
    let through = tools_of(&m, entry["command"].as_str().unwrap(), &args);
    assert!(!direct.is_empty());
    assert_eq!(through, direct);
    m.ok(&["disconnect", "cursor"]);
    assert_eq!(m.read(".cursor/mcp.json"), cursor);
}

#[test]
fn a_hub_entry_reaches_the_imported_servers_tools() {
    let fixture = fixture().to_string_lossy().into_owned();
    let cursor = format!(
        "{{\n  \"mcpServers\": {{\n    \"fixture\": {{\"command\": {}, \"args\": []}}\n  }}\n}}\n",
        json!(fixture)
    );
    let m = Machine::new("clients-hub", &[(".cursor/mcp.json", cursor)]);
    let direct = tools_of(&m, &fixture, &[]);
    m.ok(&["import", "--from", "cursor"]);
    m.ok(&["connect", "cursor"]);
    let v: Value = serde_json::from_str(&m.read(".cursor/mcp.json")).unwrap();
    let entry = &v["mcpServers"]["mcpshare"];
    assert_hub(entry, "cursor");
    let args: Vec<String> = serde_json::from_value(entry["args"].clone()).unwrap();
    // The client starts the entry with the user's environment: the config
    // imported above is found under its HOME.
    let mut c = Command::new(entry["command"].as_str().unwrap());
    c.args(&args)
        .env("MCPSHARE_HOME", &m.th.dir)
        .env("HOME", &m.home)
        .env("XDG_CONFIG_HOME", m.home.join(".config"))
        .env_remove("MCPSHARE_CONFIG")
        .current_dir(&m.project);
    let mut b = Bridge::spawn(c);
    b.initialize();
    let r = b.request(json!(1), "tools/list", json!({}));
    let through: Vec<String> = r["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    let mut want: Vec<String> = direct.iter().map(|t| format!("fixture__{t}")).collect();
    let mut got = through.clone();
    want.sort();
    got.sort();
    // The fixture pages its list; the hub gives every page at once.
    assert!(
        want.iter().all(|w| got.contains(w)),
        "{want:?} not all in {got:?}"
    );
    calls_the_fixture_through_the_hub(&m, b);
}

/// A hub bridge started from a connected entry calls the imported fixture
/// server's tools, then ends.
fn calls_the_fixture_through_the_hub(m: &Machine, mut b: Bridge) {
    assert_eq!(
        b.call_text(json!(2), "fixture__echo", json!({"text": "via hub"})),
        "via hub"
    );
    let pid: u32 = b
        .call_text(json!(3), "fixture__pid", json!({}))
        .parse()
        .unwrap();
    m.th.seen_upstreams.lock().unwrap().push(pid);
    b.close_stdin();
    b.wait_exit(WAIT);
}

/// Codex's entry `name` started as Codex starts it: HOME, PATH and the
/// entry's env only. Its args and env, and the bridge.
fn started_as_codex_starts_it(
    m: &Machine,
    name: &str,
) -> (Vec<String>, BTreeMap<String, String>, Bridge) {
    let servers = mcpshare::clients::codex::servers(&m.read(".codex/config.toml")).unwrap();
    let entry = servers.iter().find(|s| s.name == name).unwrap();
    let mcpshare::clients::Transport::Stdio {
        command, args, env, ..
    } = &entry.transport
    else {
        panic!("{entry:?}");
    };
    let mut c = Command::new(command);
    c.args(args)
        .env_clear()
        .env("HOME", &m.home)
        .env("PATH", "/usr/bin:/bin")
        .envs(env)
        .current_dir(&m.project);
    (args.clone(), env.clone(), Bridge::spawn(c))
}

/// The env that points a client at this test's mcpshare home and `config`.
fn home_and_config(m: &Machine, config: &Path) -> BTreeMap<String, String> {
    [
        ("MCPSHARE_CONFIG", config.to_path_buf()),
        ("MCPSHARE_HOME", m.th.dir.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string_lossy().into_owned()))
    .collect()
}

/// A client that starts its servers without the user's environment (Codex
/// passes only a few variables; an app started from a desktop never saw
/// the shell's exports) still reaches the user's mcpshare home and config:
/// connect writes the ones that are not the defaults into the hub entry.
#[test]
fn a_hub_entry_carries_a_home_and_config_that_are_not_the_defaults() {
    let fixture = fixture().to_string_lossy().into_owned();
    let codex = format!(
        "[mcp_servers.fixture]\ncommand = {}\nargs = []\n",
        json!(fixture)
    );
    let m = Machine::new("clients-hub-env", &[(".codex/config.toml", codex.clone())]);
    let config = m.th.dir.join("elsewhere").join("config.json");
    let vars: &[(&str, &Path)] = &[("MCPSHARE_CONFIG", &config)];
    m.ok_with(&["import", "--from", "codex"], vars);
    m.ok_with(&["connect", "codex"], vars);
    let (_, env, mut b) = started_as_codex_starts_it(&m, "mcpshare");
    assert_eq!(env, home_and_config(&m, &config));
    b.initialize();
    calls_the_fixture_through_the_hub(&m, b);
    m.ok_with(&["disconnect", "codex"], vars);
    assert_eq!(m.read(".codex/config.toml"), codex);
    // The defaults are not written: a client finds them from HOME.
    let d = Machine::new(
        "clients-hub-default",
        &[(".codex/config.toml", codex.clone())],
    );
    let home = d.home.join(".local/state/mcpshare");
    d.ok_with(&["import", "--from", "codex"], &[("MCPSHARE_HOME", &home)]);
    let out = d.ok_with(
        &["connect", "--dry-run", "codex"],
        &[("MCPSHARE_HOME", &home)],
    );
    assert!(!out.contains("env"), "{out}");
}

/// The same for wrap mode: each wrapped entry carries the home and config
/// that are not the defaults, so the server it starts is shared through
/// the user's daemon, not one started under the default home.
#[test]
fn a_wrapped_entry_carries_a_home_and_config_that_are_not_the_defaults() {
    let fixture = fixture().to_string_lossy().into_owned();
    let codex = format!(
        "[mcp_servers.fixture]\ncommand = {}\nargs = []\n",
        json!(fixture)
    );
    let m = Machine::new("clients-wrap-env", &[(".codex/config.toml", codex.clone())]);
    // A daemon under the default home would be a stray: stopped at the end.
    let default_home = TestHome {
        dir: m.home.join(".local/state/mcpshare"),
        seen_upstreams: Default::default(),
    };
    let config = m.th.dir.join("elsewhere").join("config.json");
    let vars: &[(&str, &Path)] = &[("MCPSHARE_CONFIG", &config)];
    m.ok_with(&["connect", "--mode", "wrap", "codex"], vars);
    let (args, env, mut b) = started_as_codex_starts_it(&m, "fixture");
    assert_eq!(args[..3], ["run", "--", fixture.as_str()]);
    assert_eq!(env, home_and_config(&m, &config));
    b.initialize();
    assert_eq!(
        b.call_text(json!(1), "echo", json!({"text": "wrapped"})),
        "wrapped"
    );
    let up = b.upstream_pid(json!(2));
    m.th.seen_upstreams.lock().unwrap().push(up);
    assert!(
        !default_home.dir.exists(),
        "a daemon started under the default home"
    );
    assert!(m.th.daemon_pid().is_some_and(pid_alive), "{}", m.th.log());
    b.close_stdin();
    b.wait_exit(WAIT);
    m.ok_with(&["disconnect", "codex"], vars);
    assert_eq!(m.read(".codex/config.toml"), codex);
    // Edited since connect: only connect's changes are undone, env too.
    m.ok_with(&["connect", "--mode", "wrap", "codex"], vars);
    let p = m.home.join(".codex/config.toml");
    let edited = format!("{}# mine\n", m.read(".codex/config.toml"));
    std::fs::write(&p, edited).unwrap();
    m.ok_with(&["disconnect", "codex"], vars);
    assert_eq!(m.read(".codex/config.toml"), format!("{codex}# mine\n"));
}

/// A `claude` on PATH that records its arguments (one a line, then
/// `--- DIR`) in `log` and changes nothing.
fn fake_claude(dir: &Path, log: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let script = dir.join("claude");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n{{ for a in \"$@\"; do printf '%s\\n' \"$a\"; done; echo \"--- $PWD\"; }} >> '{}'\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The calls the fake `claude` saw: each call's arguments.
fn claude_calls(log: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut calls = Vec::new();
    let mut call = Vec::new();
    for line in text.lines() {
        if line.starts_with("--- ") {
            calls.push(std::mem::take(&mut call));
        } else {
            call.push(line.to_string());
        }
    }
    calls
}

/// With `claude` on PATH, a running Claude Code may rewrite ~/.claude.json
/// from its memory at any time: connect and disconnect both go through
/// its own commands, never write the file.
#[test]
fn claude_code_is_connected_and_disconnected_through_claude_on_path() {
    let memory = "{\n      \"type\": \"stdio\",\n      \"command\": \"memory-server\",\n      \"args\": [],\n      \"env\": {\"K\": \"a \\\"quoted\\\" value\"}\n    }";
    let before = format!(
        "{{\n  \"numStartups\": 3,\n  \"mcpServers\": {{\n    \"memory\": {memory}\n  }}\n}}\n"
    );
    let m = Machine::new("clients-claude-cli", &[(".claude.json", before.clone())]);
    let bin = m.th.dir.join("bin");
    let log = m.th.dir.join("claude.log");
    fake_claude(&bin, &log);
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let vars: &[(&str, &Path)] = &[("PATH", Path::new(&path))];
    m.ok_with(&["import", "--from", "claude-code"], vars);
    m.ok_with(&["connect", "claude-code"], vars);
    let calls = claude_calls(&log);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        calls[0][..5],
        ["mcp", "add-json", "--scope", "user", "mcpshare"]
    );
    let hub: Value = serde_json::from_str(&calls[0][5..].join("\n")).unwrap();
    assert_hub(&hub, "claude add-json");
    assert_eq!(calls[1], ["mcp", "remove", "--scope", "user", "memory"]);
    assert_eq!(
        m.read(".claude.json"),
        before,
        "claude edits its file, not mcpshare"
    );

    // What claude would have written.
    let connected = format!(
        "{{\n  \"numStartups\": 4,\n  \"mcpServers\": {{\n    \"mcpshare\": {}\n  }}\n}}\n",
        serde_json::to_string_pretty(&hub).unwrap()
    );
    std::fs::write(m.home.join(".claude.json"), &connected).unwrap();
    m.ok_with(&["disconnect", "claude-code"], vars);
    let calls = claude_calls(&log);
    assert_eq!(calls.len(), 4, "{calls:?}");
    // Put back first, then the hub out: a failure part way loses nothing.
    assert_eq!(
        calls[2][..5],
        ["mcp", "add-json", "--scope", "user", "memory"]
    );
    let back: Value = serde_json::from_str(&calls[2][5..].join("\n")).unwrap();
    assert_eq!(back, serde_json::from_str::<Value>(memory).unwrap());
    assert_eq!(calls[3], ["mcp", "remove", "--scope", "user", "mcpshare"]);
    assert_eq!(
        m.read(".claude.json"),
        connected,
        "claude edits its file, not mcpshare"
    );
    assert_eq!(m.records(), 0, "disconnect forgets its record");
}
