//! Which clients share an upstream: bridges started with the environments
//! real client apps give their MCP servers (built here, variable by
//! variable, as each app sets them), not the test's own environment.

use crate::common::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

type Env = BTreeMap<String, String>;

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A user's machine: a home with a project and Codex's config directory,
/// and a shell whose PATH finds the fixture server by name.
struct Machine {
    home: PathBuf,
    project: PathBuf,
    other_project: PathBuf,
    codex_home: PathBuf,
}

impl Machine {
    fn new(t: &TestHome) -> Machine {
        let home = t.dir.join("user");
        let m = Machine {
            project: home.join("src/app"),
            other_project: home.join("src/other"),
            codex_home: home.join(".codex"),
            home,
        };
        for d in [&m.project, &m.other_project, &m.codex_home] {
            std::fs::create_dir_all(d).unwrap();
        }
        m
    }

    fn path(&self) -> String {
        format!("{}:/usr/local/bin:/usr/bin:/bin", fixture_dir().display())
    }

    /// What a login shell in a terminal exports.
    fn shell(&self, cwd: &Path) -> Env {
        let mut e = env(&[
            ("USER", "dev"),
            ("LOGNAME", "dev"),
            ("SHELL", "/bin/bash"),
            ("LANG", "C.UTF-8"),
            ("TERM", "xterm-256color"),
            ("COLORTERM", "truecolor"),
            ("SHLVL", "2"),
            ("OLDPWD", "/"),
            ("_", "/usr/bin/env"),
        ]);
        e.insert("HOME".into(), self.home.display().to_string());
        e.insert("PATH".into(), self.path());
        e.insert("PWD".into(), cwd.display().to_string());
        e
    }

    /// Claude Code: its whole environment plus its own variables.
    fn claude_code(&self, cwd: &Path) -> Env {
        let mut e = self.shell(cwd);
        e.extend(env(&[
            ("CLAUDECODE", "1"),
            ("CLAUDE_CODE_ENTRYPOINT", "cli"),
            ("AI_AGENT", "claude-code_2-1-328_agent"),
            ("CLAUDE_CODE_SSE_PORT", "41235"),
            // Seen set by Claude Code 2.1.328 for its servers (make interop).
            ("COREPACK_ENABLE_AUTO_PIN", "0"),
            ("NoDefaultCurrentDirectoryInExePath", "1"),
            ("TERM_PROGRAM", "tmux"),
            ("TMUX", "/tmp/tmux-1000/default,123,0"),
        ]));
        e.insert("CLAUDE_PROJECT_DIR".into(), cwd.display().to_string());
        e
    }

    /// Gemini CLI: its whole environment, marked as relaunched.
    fn gemini_cli(&self, cwd: &Path) -> Env {
        let mut e = self.shell(cwd);
        e.extend(env(&[
            ("GEMINI_CLI", "1"),
            ("GEMINI_CLI_NO_RELAUNCH", "true"),
            ("TERM_PROGRAM", "vscode"),
            ("TERM_PROGRAM_VERSION", "1.99.0"),
            ("VSCODE_GIT_IPC_HANDLE", "/run/user/1000/vscode-git-1.sock"),
            ("GEMINI_CLI_IDE_SERVER_PORT", "38211"),
            ("GEMINI_CLI_IDE_WORKSPACE_PATH", "/home/dev/src/app"),
        ]));
        e
    }

    /// Codex: only its fixed list of variables, with its own directory in
    /// front of PATH; it starts servers in its config directory.
    fn codex(&self) -> Env {
        let shell = self.shell(&self.codex_home);
        let mut e: Env = ["HOME", "LOGNAME", "SHELL", "USER", "LANG", "TERM"]
            .iter()
            .map(|k| (k.to_string(), shell[*k].clone()))
            .collect();
        let arg0 = self.codex_home.join("tmp/arg0/codex-arg0Xk2P");
        e.insert("PATH".into(), format!("{}:{}", arg0.display(), self.path()));
        e
    }

    /// Cursor: the editor's extension host (VS Code's, renamed).
    fn cursor(&self, cwd: &Path) -> Env {
        let mut e = self.shell(cwd);
        for k in ["TERM", "COLORTERM", "SHLVL", "OLDPWD", "_"] {
            e.remove(k);
        }
        e.extend(env(&[
            ("ELECTRON_RUN_AS_NODE", "1"),
            ("VSCODE_PID", "4242"),
            ("VSCODE_CWD", "/"),
            ("VSCODE_IPC_HOOK", "/run/user/1000/vscode-1.sock"),
            ("CURSOR_TRACE_ID", "8f0c2d"),
            ("APPLICATION_INSIGHTS_NO_DIAGNOSTIC_CHANNEL", "1"),
            ("ORIGINAL_XDG_CURRENT_DESKTOP", "GNOME"),
            ("CHROME_DESKTOP", "cursor.desktop"),
        ]));
        e
    }

    /// Zed, run from its terminal.
    fn zed(&self, cwd: &Path) -> Env {
        let mut e = self.shell(cwd);
        e.extend(env(&[
            ("ZED_TERM", "true"),
            ("ZED_ENVIRONMENT", "worktree-shell"),
            ("TERM_PROGRAM", "zed"),
            ("TERM_PROGRAM_VERSION", "0.190.0"),
        ]));
        e
    }

    /// Windsurf's extension host.
    fn windsurf(&self, cwd: &Path) -> Env {
        let mut e = self.cursor(cwd);
        e.remove("CURSOR_TRACE_ID");
        e.insert(
            "CODEIUM_EDITOR_APP_ROOT".into(),
            "/usr/share/windsurf".into(),
        );
        e.insert("CHROME_DESKTOP".into(), "windsurf.desktop".into());
        e
    }
}

fn fixture_dir() -> PathBuf {
    fixture().parent().unwrap().to_path_buf()
}

/// `mcpshare run [--global] -- fixture` in `cwd` with exactly this
/// environment (plus MCPSHARE_HOME), the server named as a config names it:
/// by its command name, found on PATH.
fn app_bridge(
    home: &TestHome,
    cwd: &Path,
    mut env: Env,
    config: &[(&str, &str)],
    global: bool,
) -> Bridge {
    env.extend(config.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut c = Command::new(BIN);
    c.env_clear()
        .envs(&env)
        .env("MCPSHARE_HOME", &home.dir)
        .current_dir(cwd)
        .arg("run");
    if global {
        c.arg("--global");
    }
    c.arg("--").arg("fixture");
    let mut b = Bridge::spawn(c);
    b.initialize();
    b
}

/// The upstream pid each bridge reaches, recorded for the leak check.
fn pids(home: &TestHome, bridges: &mut [Bridge]) -> Vec<u32> {
    let p: Vec<u32> = bridges
        .iter_mut()
        .map(|b| b.upstream_pid(json!("pid")))
        .collect();
    home.seen_upstreams.lock().unwrap().extend(&p);
    p
}

const MEMORY: (&str, &str) = ("MEMORY_FILE_PATH", "/home/dev/.memory.json");

#[test]
fn client_apps_share_one_upstream_with_global() {
    let home = TestHome::new("apps-global");
    let m = Machine::new(&home);
    let (p, q) = (&m.project, &m.other_project);
    let mut bridges = vec![
        app_bridge(&home, p, m.claude_code(p), &[MEMORY], true),
        app_bridge(&home, p, m.gemini_cli(p), &[MEMORY], true),
        app_bridge(&home, &m.codex_home, m.codex(), &[MEMORY], true),
        app_bridge(&home, q, m.cursor(q), &[MEMORY], true),
        app_bridge(&home, q, m.zed(q), &[MEMORY], true),
        app_bridge(&home, q, m.windsurf(q), &[MEMORY], true),
    ];
    let p = pids(&home, &mut bridges);
    assert!(
        p.iter().all(|x| *x == p[0]),
        "apps configured alike must share one upstream: pids {p:?}; status {}",
        home.status()
    );
    assert_eq!(home.status()["upstreams"].as_array().unwrap().len(), 1);
    // The upstream runs with the PATH of the session that started it.
    let first_path = m.claude_code(&m.project)["PATH"].clone();
    assert_eq!(
        bridges[2].call_text(json!(9), "env", json!({"name": "PATH"})),
        first_path
    );
}

#[test]
fn client_apps_share_by_directory_without_global() {
    let home = TestHome::new("apps-dir");
    let m = Machine::new(&home);
    let (p, q) = (&m.project, &m.other_project);
    let mut bridges = vec![
        app_bridge(&home, p, m.claude_code(p), &[MEMORY], false),
        app_bridge(&home, p, m.gemini_cli(p), &[MEMORY], false),
        app_bridge(&home, p, m.cursor(p), &[MEMORY], false),
        app_bridge(&home, p, m.zed(p), &[MEMORY], false),
        app_bridge(&home, q, m.claude_code(q), &[MEMORY], false),
        app_bridge(&home, &m.codex_home, m.codex(), &[MEMORY], false),
    ];
    let p = pids(&home, &mut bridges);
    assert!(
        p[..4].iter().all(|x| *x == p[0]),
        "apps in one directory must share: pids {p:?}"
    );
    assert_ne!(p[4], p[0], "another directory gets its own upstream");
    assert!(
        p[5] != p[0] && p[5] != p[4],
        "Codex runs servers in ~/.codex: its own upstream without --global"
    );
    assert_eq!(home.status()["upstreams"].as_array().unwrap().len(), 3);
}

#[test]
fn configs_differing_in_a_setting_or_a_secret_do_not_share() {
    let home = TestHome::new("apps-differ");
    let m = Machine::new(&home);
    let p = &m.project;
    let token = |t: &'static str| [MEMORY, ("GITHUB_TOKEN", t)];
    let mut bridges = vec![
        app_bridge(&home, p, m.claude_code(p), &token("ghp_one"), true),
        app_bridge(&home, p, m.gemini_cli(p), &token("ghp_one"), true),
        app_bridge(&home, p, m.gemini_cli(p), &token("ghp_two"), true),
        app_bridge(&home, p, m.claude_code(p), &[MEMORY], true),
        app_bridge(
            &home,
            p,
            m.claude_code(p),
            &[
                ("MEMORY_FILE_PATH", "/home/dev/other.json"),
                ("GITHUB_TOKEN", "ghp_one"),
            ],
            true,
        ),
    ];
    let p = pids(&home, &mut bridges);
    assert_eq!(p[0], p[1], "the same configuration shares");
    for (i, what) in [
        (2, "another secret"),
        (3, "no secret"),
        (4, "another setting"),
    ] {
        assert!(
            p.iter().enumerate().all(|(j, x)| j == i || *x != p[i]),
            "{what} must get an upstream of its own: pids {p:?}"
        );
    }
}

/// A node server's id names its package, not `index_js`: the fixture
/// installed as a package's entry point under node_modules.
#[test]
fn ids_name_the_server_package() {
    let home = TestHome::new("ids");
    let dist = home.dir.join("app/node_modules/@acme/server-notes/dist");
    std::fs::create_dir_all(&dist).unwrap();
    let entry = dist.join("index.js");
    std::os::unix::fs::symlink(fixture(), &entry).unwrap();
    let mut c = home.cmd();
    c.arg("run").arg("--").arg(&entry);
    let mut b = Bridge::spawn(c);
    b.initialize();
    let pid = b.upstream_pid(json!(1));
    home.seen_upstreams.lock().unwrap().push(pid);
    let id = home.status()["upstreams"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(id.starts_with("server-notes-"), "{id}");
}

/// Upstreams of one command that did not share are named in `status`,
/// `status --json` and `doctor`, with what differs and the fix, and never
/// with a secret's value.
#[test]
fn status_and_doctor_name_near_misses() {
    let home = TestHome::new("nearmiss");
    let m = Machine::new(&home);
    let (p, q) = (&m.project, &m.other_project);
    let token = |t: &'static str| [MEMORY, ("GITHUB_TOKEN", t)];
    let mut bridges = vec![
        app_bridge(&home, p, m.claude_code(p), &token("ghp_secret_one"), false),
        app_bridge(&home, q, m.gemini_cli(q), &token("ghp_secret_one"), false),
        app_bridge(&home, p, m.claude_code(p), &token("ghp_secret_two"), false),
    ];
    let p = pids(&home, &mut bridges);
    assert!(p[0] != p[1] && p[0] != p[2] && p[1] != p[2], "{p:?}");
    let st = home.status();
    let ids: Vec<String> = st["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    let id_of = |pid: u32| {
        st["upstreams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["pid"] == json!(pid))
            .map(|u| u["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let near = st["near_misses"].as_array().expect("near_misses in status");
    let find = |a: &str, b: &str| {
        near.iter()
            .find(|n| {
                let u = &n["upstreams"];
                (u[0] == json!(a) && u[1] == json!(b)) || (u[0] == json!(b) && u[1] == json!(a))
            })
            .unwrap_or_else(|| panic!("no near miss {a} {b} in {st}"))
    };
    let dir = find(&id_of(p[0]), &id_of(p[1]));
    assert_eq!(dir["differ"], json!(["cwd"]), "{dir}");
    assert!(dir["fix"].as_str().unwrap().contains("--global"), "{dir}");
    let key = find(&id_of(p[0]), &id_of(p[2]));
    assert_eq!(key["differ"], json!(["env GITHUB_TOKEN"]), "{key}");
    assert!(
        key["fix"].as_str().unwrap().contains("GITHUB_TOKEN"),
        "{key}"
    );
    let both = find(&id_of(p[1]), &id_of(p[2]));
    assert_eq!(both["differ"], json!(["cwd", "env GITHUB_TOKEN"]), "{both}");
    assert_eq!(near.len(), 3, "{st}");

    let out = home.mcpshare(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("env GITHUB_TOKEN") && ids.iter().all(|id| text.contains(id.as_str())),
        "{text}"
    );
    let out = home.mcpshare(&["doctor", "--json"]);
    let doctor: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings: Vec<&serde_json::Value> = doctor
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"] == json!("near_misses"))
        .collect();
    assert_eq!(findings.len(), 3, "{doctor}");
    assert!(
        findings
            .iter()
            .all(|f| f["level"] == json!("warning") && f["fix"].is_string()),
        "{doctor}"
    );
    let all = [
        String::from_utf8_lossy(&home.mcpshare(&["status", "--json"]).stdout).to_string(),
        text.to_string(),
        doctor.to_string(),
        String::from_utf8_lossy(&home.mcpshare(&["doctor"]).stdout).to_string(),
    ];
    for out in all {
        assert!(
            !out.contains("ghp_secret"),
            "a secret's value leaked: {out}"
        );
    }
}
