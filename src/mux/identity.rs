//! What makes two `mcpshare run` invocations the same upstream: the
//! command (by its resolved path, which then stands for `PATH`), args,
//! working directory (unless global) and the environment that matters, and
//! why two upstreams of one command did not share. Variables that client
//! apps and terminals set about themselves are left out; everything else,
//! configuration and secrets included, is in, so clients whose configs
//! differ in an API key never share. Differences are named, never valued.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod name;

/// How a bridge asks the daemon for an upstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    pub command: String,
    pub args: Vec<String>,
    pub cwd: String,
    /// The full environment the upstream is started with.
    pub env: BTreeMap<String, String>,
    /// Share across working directories.
    #[serde(default)]
    pub global: bool,
    /// Never share: an upstream for this session alone.
    #[serde(default)]
    pub isolated: bool,
    /// The configured server this runs, by its name in mcpshare's config;
    /// not part of the identity (two names for one command share it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Its arguments hold expanded `${VAR}` values: never shown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret_args: bool,
}

/// Variables that describe the terminal, session or client app rather than
/// the server's configuration. Documented in mcpshare(1), IDENTITY.
pub const IGNORED_ENV: &[&str] = &[
    // Shells and terminals.
    "_",
    "OLDPWD",
    "PWD",
    "SHLVL",
    "TERM",
    "COLORTERM",
    "COLUMNS",
    "LINES",
    "PS1",
    "PS2",
    "PROMPT_COMMAND",
    "LS_COLORS",
    "STY",
    "WINDOW",
    "WINDOWID",
    // The desktop and login session.
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "DBUS_SESSION_BUS_ADDRESS",
    "GPG_TTY",
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
    "SSH_CLIENT",
    "SSH_CONNECTION",
    "SSH_TTY",
    "SECURITYSESSIONID",
    "INVOCATION_ID",
    "JOURNAL_STREAM",
    "VTE_VERSION",
    "MANAGERPID",
    "SYSTEMD_EXEC_PID",
    "XPC_SERVICE_NAME",
    "XPC_FLAGS",
    "__CFBundleIdentifier",
    "__CF_USER_TEXT_ENCODING",
    // Claude Code.
    "CLAUDECODE",
    "AI_AGENT",
    "CLAUDE_PROJECT_DIR",
    "CLAUDE_PID",
    "CLAUDE_ENV_FILE",
    "COREPACK_ENABLE_AUTO_PIN",
    "NoDefaultCurrentDirectoryInExePath",
    // Gemini CLI.
    "GEMINI_CLI",
    "GEMINI_CLI_NO_RELAUNCH",
    // Codex.
    "CODEX_THREAD_ID",
    "CODEX_SANDBOX",
    "CODEX_SANDBOX_NETWORK_DISABLED",
    "CODEX_MANAGED_BY_NPM",
    "CODEX_MANAGED_BY_BUN",
    // Electron apps: Claude Desktop, VS Code and its forks (Cursor,
    // Windsurf), and the extensions that run in them (Cline, Continue).
    "ELECTRON_RUN_AS_NODE",
    "ELECTRON_NO_ATTACH_CONSOLE",
    "CHROME_DESKTOP",
    "GIO_LAUNCHED_DESKTOP_FILE",
    "GIO_LAUNCHED_DESKTOP_FILE_PID",
    "APPLICATION_INSIGHTS_NO_DIAGNOSTIC_CHANNEL",
    "ORIGINAL_XDG_CURRENT_DESKTOP",
    // Windsurf.
    "CODEIUM_EDITOR_APP_ROOT",
    // Zed.
    "ZED_TERM",
    "ZED_ENVIRONMENT",
    "ZED_SESSION_ID",
];

/// Prefixes of such variables.
pub const IGNORED_ENV_PREFIXES: &[&str] = &[
    "MCPSHARE_",
    "TERM_",
    "TMUX",
    "ITERM_",
    "KITTY_",
    "WEZTERM_",
    "ALACRITTY_",
    "KONSOLE_",
    "GNOME_TERMINAL_",
    "LC_TERMINAL",
    "XDG_SESSION_",
    "XDG_SEAT",
    "XDG_VTNR",
    "HIST",
    "WT_",
    "CLAUDE_CODE_",
    "CLAUDE_AGENT_SDK_",
    "GEMINI_CLI_IDE_",
    "VSCODE_",
    "CURSOR_",
];

/// Does this variable count for identity? `PATH` is decided by the spec,
/// see [`Spec::identity`].
pub fn env_matters(name: &str) -> bool {
    !IGNORED_ENV.contains(&name) && !IGNORED_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// What two specs are compared on: what the id hashes.
#[derive(Debug, PartialEq, Eq)]
pub struct Identity<'a> {
    /// The command's absolute path when it resolves, else as given.
    pub command: String,
    pub args: &'a [String],
    /// None when global.
    pub cwd: Option<&'a str>,
    /// The variables that matter, sorted by name.
    pub env: Vec<(&'a str, &'a str)>,
}

impl Spec {
    /// What this spec is shared on. Once the command resolves to an
    /// absolute path, that path stands for `PATH`: client apps put their
    /// own directories in front of it (Codex does) without changing which
    /// server runs.
    pub fn identity(&self) -> Identity<'_> {
        let resolved = self.resolve_command();
        let env = self
            .env
            .iter()
            .filter(|(k, _)| env_matters(k) && !(resolved.is_some() && *k == "PATH"))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Identity {
            command: resolved
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| self.command.clone()),
            args: &self.args,
            cwd: (!self.global).then_some(self.cwd.as_str()),
            env,
        }
    }

    /// Where the upstream's command is, found as `execvp` in the session's
    /// working directory with its `PATH` would find it: a name with a slash
    /// from the working directory, a bare name in each `PATH` entry (an
    /// empty one is the working directory). None when nothing executable
    /// is there.
    pub fn resolve_command(&self) -> Option<PathBuf> {
        let cwd = Path::new(&self.cwd);
        let candidates: Vec<PathBuf> = if self.command.contains('/') {
            vec![cwd.join(&self.command)]
        } else {
            self.env
                .get("PATH")?
                .split(':')
                .map(|dir| cwd.join(dir).join(&self.command))
                .collect()
        };
        candidates
            .into_iter()
            .find(|p| p.is_absolute() && is_executable(p))
    }

    /// The shared-upstream id: a readable name plus a hash of the identity.
    pub fn id(&self) -> String {
        let id = self.identity();
        let mut h = crate::hash::Fnv::default();
        h.field(id.command.as_bytes());
        h.field(&(id.args.len() as u64).to_le_bytes());
        for a in id.args {
            h.field(a.as_bytes());
        }
        h.field(id.cwd.unwrap_or("*").as_bytes());
        for (k, v) in id.env {
            h.field(k.as_bytes());
            h.field(v.as_bytes());
        }
        format!("{}-{:016x}", self.name(), h.finish())
    }
}

/// Two upstreams of the same command and arguments that did not share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NearMiss {
    pub upstreams: [String; 2],
    /// What differs, by name and never by value: `cwd`, `--global`,
    /// `command path`, `env NAME`.
    pub differ: Vec<String>,
    /// How to make them share.
    pub fix: String,
}

/// Every pair of shared (not isolated) upstreams that run the same command
/// and arguments yet are two upstreams, with what differs and the fix.
pub fn near_misses(ups: &[(String, Spec)]) -> Vec<NearMiss> {
    let mut out = Vec::new();
    let shared: Vec<&(String, Spec)> = ups.iter().filter(|(_, s)| !s.isolated).collect();
    for (i, (id_a, a)) in shared.iter().enumerate() {
        for (id_b, b) in &shared[i + 1..] {
            if a.command != b.command || a.args != b.args {
                continue;
            }
            let differ = differences(a, b);
            if !differ.is_empty() {
                out.push(NearMiss {
                    upstreams: [id_a.clone(), id_b.clone()],
                    fix: fix_for(&differ),
                    differ,
                });
            }
        }
    }
    out
}

/// What makes two specs two identities, by name only.
pub fn differences(a: &Spec, b: &Spec) -> Vec<String> {
    let (ia, ib) = (a.identity(), b.identity());
    let mut differ = Vec::new();
    if ia.command != ib.command {
        differ.push("command path".to_string());
    }
    if a.global != b.global {
        differ.push("--global".to_string());
    } else if ia.cwd != ib.cwd {
        differ.push("cwd".to_string());
    }
    let (ea, eb): (BTreeMap<_, _>, BTreeMap<_, _>) =
        (ia.env.into_iter().collect(), ib.env.into_iter().collect());
    let names: std::collections::BTreeSet<&str> = ea.keys().chain(eb.keys()).copied().collect();
    for name in names {
        if ea.get(name) != eb.get(name) {
            differ.push(format!("env {name}"));
        }
    }
    differ
}

fn fix_for(differ: &[String]) -> String {
    let mut fixes = Vec::new();
    if differ.iter().any(|d| d == "--global") {
        fixes.push("run both with --global, or neither".to_string());
    }
    if differ.iter().any(|d| d == "cwd") {
        fixes.push(
            "add --global to both configurations (mcpshare run --global -- ...) \
             if the server does not depend on its working directory"
                .to_string(),
        );
    }
    if differ.iter().any(|d| d == "command path") {
        fixes.push("name the command by the same absolute path in both".to_string());
    }
    let vars: Vec<&str> = differ
        .iter()
        .filter_map(|d| d.strip_prefix("env "))
        .collect();
    if !vars.is_empty() {
        fixes.push(format!(
            "align {} in both configurations (the same value, or unset in both)",
            vars.join(", ")
        ));
    }
    fixes.join("; ")
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Without execute bits, any file found on the path counts.
#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        let mut env = BTreeMap::new();
        env.insert("PATH".into(), "/usr/bin".into());
        env.insert("API_KEY".into(), "one".into());
        env.insert("TERM_SESSION_ID".into(), "tab-1".into());
        env.insert("SHLVL".into(), "2".into());
        Spec {
            command: "npx".into(),
            args: vec!["-y".into(), "@modelcontextprotocol/server-memory".into()],
            cwd: "/home/u/project".into(),
            env,
            global: false,
            isolated: false,
            server: None,
            secret_args: false,
        }
    }

    #[test]
    fn terminals_share_but_secrets_and_dirs_do_not() {
        let base = spec();
        let mut other_terminal = spec();
        other_terminal
            .env
            .insert("TERM_SESSION_ID".into(), "tab-2".into());
        other_terminal.env.insert("SHLVL".into(), "5".into());
        assert_eq!(base.id(), other_terminal.id());

        let mut other_key = spec();
        other_key.env.insert("API_KEY".into(), "two".into());
        assert_ne!(base.id(), other_key.id());

        let mut other_dir = spec();
        other_dir.cwd = "/elsewhere".into();
        assert_ne!(base.id(), other_dir.id());
        let (mut g1, mut g2) = (spec(), other_dir);
        g1.global = true;
        g2.global = true;
        assert_eq!(g1.id(), g2.id());

        let mut split = spec();
        split.args = vec!["-y@modelcontextprotocol/server-memory".into()];
        assert_ne!(base.id(), split.id());
    }

    #[test]
    fn client_apps_own_variables_do_not_count() {
        let base = spec();
        for (k, v) in [
            ("CLAUDECODE", "1"),
            ("CLAUDE_CODE_ENTRYPOINT", "cli"),
            ("AI_AGENT", "claude-code_2-1-328_agent"),
            ("CLAUDE_PROJECT_DIR", "/home/u/project"),
            ("COREPACK_ENABLE_AUTO_PIN", "0"),
            ("NoDefaultCurrentDirectoryInExePath", "1"),
            ("GEMINI_CLI", "1"),
            ("GEMINI_CLI_IDE_SERVER_PORT", "38211"),
            ("CODEX_SANDBOX", "seatbelt"),
            ("CURSOR_TRACE_ID", "8f0c2d"),
            ("VSCODE_PID", "4242"),
            ("ELECTRON_RUN_AS_NODE", "1"),
            ("CODEIUM_EDITOR_APP_ROOT", "/usr/share/windsurf"),
            ("ZED_TERM", "true"),
            ("__CF_USER_TEXT_ENCODING", "0x1F5:0x0:0x0"),
        ] {
            let mut app = spec();
            app.env.insert(k.into(), v.into());
            assert_eq!(base.id(), app.id(), "{k} split an identity");
        }
        for k in ["MEMORY_FILE_PATH", "GITHUB_TOKEN", "CODEX_HOME", "HOME"] {
            let mut config = spec();
            config.env.insert(k.into(), "x".into());
            assert_ne!(base.id(), config.id(), "{k} must count");
        }
    }

    #[test]
    fn near_misses_name_what_differs_but_no_value() {
        let with = |f: &dyn Fn(&mut Spec)| {
            let mut s = spec();
            f(&mut s);
            s
        };
        let ups = vec![
            ("a".to_string(), spec()),
            ("b".to_string(), with(&|s| s.cwd = "/elsewhere".into())),
            (
                "c".to_string(),
                with(&|s| {
                    s.env.insert("API_KEY".into(), "two".into());
                }),
            ),
            ("d".to_string(), with(&|s| s.global = true)),
            ("e".to_string(), with(&|s| s.isolated = true)),
            ("f".to_string(), with(&|s| s.args.push("--other".into()))),
        ];
        let near = near_misses(&ups);
        let pair = |x: &str, y: &str| {
            near.iter()
                .find(|n| n.upstreams == [x.to_string(), y.to_string()])
                .unwrap_or_else(|| panic!("no {x} {y} in {near:?}"))
        };
        assert_eq!(pair("a", "b").differ, ["cwd"]);
        assert!(pair("a", "b").fix.contains("--global"));
        assert_eq!(pair("a", "c").differ, ["env API_KEY"]);
        assert!(pair("a", "c").fix.contains("align API_KEY"));
        assert_eq!(pair("b", "c").differ, ["cwd", "env API_KEY"]);
        assert_eq!(pair("a", "d").differ, ["--global"]);
        assert_eq!(
            near.len(),
            6,
            "isolated and other arguments are no near misses: {near:?}"
        );
        assert!(!format!("{near:?}").contains("two") && !format!("{near:?}").contains("one"));
    }

    /// A temp dir with an executable `tool` in `a/` and `b/`.
    fn tools(name: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("mcpshare-ident-{name}-{}", std::process::id()));
        for sub in ["a", "b", "empty"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        for sub in ["a", "b"] {
            let tool = dir.join(sub).join("tool");
            std::fs::write(&tool, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(dir.join("empty/tool"), "not executable").unwrap();
        dir
    }

    #[test]
    fn a_resolved_command_stands_for_path() {
        let dir = tools("path");
        let d = |sub: &str| dir.join(sub).display().to_string();
        let with_path = |path: String| {
            let mut s = spec();
            s.command = "tool".into();
            s.cwd = dir.display().to_string();
            s.env.insert("PATH".into(), path);
            s
        };
        let plain = with_path(format!("{}:/usr/bin", d("a")));
        let prefixed = with_path(format!("/opt/app/bin:{}:{}:/usr/bin", d("empty"), d("a")));
        assert_eq!(plain.resolve_command(), Some(dir.join("a/tool")));
        assert_eq!(plain.id(), prefixed.id(), "PATH split a resolved command");
        assert_eq!(plain.identity(), prefixed.identity());
        // Another file of that name is another server.
        assert_ne!(plain.id(), with_path(d("b")).id());
        // A relative entry is taken from the working directory.
        assert_eq!(
            with_path("a".into()).resolve_command(),
            Some(dir.join("a/tool"))
        );
        // A command that does not resolve keeps PATH in the identity.
        let (mut x, mut y) = (plain.clone(), prefixed.clone());
        (x.command, y.command) = ("missing".into(), "missing".into());
        assert_eq!(x.resolve_command(), None);
        assert_ne!(x.id(), y.id());
        // A path with a slash resolves from the working directory.
        let mut rel = spec();
        (rel.command, rel.cwd) = ("b/tool".into(), dir.display().to_string());
        assert_eq!(rel.resolve_command(), Some(dir.join("b/tool")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
