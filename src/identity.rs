//! What makes two `mcpshare run` invocations the same upstream: command,
//! args, working directory (unless global) and the environment that
//! matters. Variables that differ between terminals and client apps but not
//! between configurations are left out; everything else, secrets included,
//! is in — so clients whose configs differ in an API key never share.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
        let mut h = Fnv::new();
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
        format!("{}-{:016x}", self.name(), h.0)
    }

    /// A short readable name for what identifies the server: the package
    /// an `npx`, `uvx` or similar runner fetches, the package directory of a
    /// script under `node_modules`, else the script's (or command's) name,
    /// a generic one (`index.js`, `main.py`) by its directory. Only the
    /// command and arguments decide it, never the working directory.
    pub fn name(&self) -> String {
        let runner = file_name(&self.command).trim_end_matches(".exe");
        let mut args = self.args.iter().map(String::as_str);
        let name = match runner {
            "npx" | "bunx" | "pnpx" | "uvx" | "pipx" => package(runner, args),
            "npm" | "pnpm" | "yarn" => {
                let sub = positionals(runner, &mut args).next();
                matches!(sub, Some("exec" | "dlx" | "x"))
                    .then(|| package(runner, args))
                    .flatten()
            }
            "node" | "bun" | "deno" | "tsx" | "ts-node" | "uv" | "docker" | "podman" => {
                script(runner, args)
            }
            r if r.starts_with("python") => script("python", args),
            _ => None,
        };
        let clean: String = name
            .unwrap_or_else(|| script_name(&self.command))
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        if clean.is_empty() {
            "upstream".into()
        } else {
            clean
        }
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

/// Options of each runner that take the next argument as their value.
fn takes_value(runner: &str, flag: &str) -> bool {
    let flags: &[&str] = match runner {
        "npx" | "bunx" | "pnpx" | "npm" | "pnpm" | "yarn" => &[
            "-p",
            "--package",
            "-c",
            "--call",
            "--registry",
            "--cache",
            "--userconfig",
            "--prefix",
            "-w",
            "--workspace",
            "-C",
            "--dir",
        ],
        "uvx" | "uv" => &[
            "--from",
            "--with",
            "--with-editable",
            "--with-requirements",
            "-p",
            "--python",
            "--directory",
            "--project",
            "--index",
            "--index-url",
            "--default-index",
            "--extra-index-url",
            "--env-file",
            "--extra",
            "--group",
            "--package",
        ],
        "pipx" => &["--spec", "--python", "--index-url", "--pip-args"],
        "node" | "bun" | "tsx" | "ts-node" => &[
            "-r",
            "--require",
            "--import",
            "--loader",
            "--experimental-loader",
            "--env-file",
            "--conditions",
            "-C",
            "--cwd",
            "--tsconfig",
        ],
        "deno" => &["-c", "--config", "--import-map", "--env-file", "--location"],
        "python" => &["-m", "-W", "-X", "-Q"],
        "docker" | "podman" => &[
            "-e",
            "--env",
            "--env-file",
            "-v",
            "--volume",
            "--mount",
            "--name",
            "--network",
            "--net",
            "-p",
            "--publish",
            "-w",
            "--workdir",
            "-u",
            "--user",
            "-l",
            "--label",
            "--entrypoint",
            "--platform",
            "--add-host",
            "--pull",
            "--cpus",
            "-m",
            "--memory",
            "-h",
            "--hostname",
            "--device",
            "--cap-add",
            "--cap-drop",
            "--security-opt",
            "--tmpfs",
        ],
        _ => &[],
    };
    flags.contains(&flag)
}

/// The positional arguments, in order, skipping options and their values.
fn positionals<'a: 'b, 'b, I: Iterator<Item = &'a str>>(
    runner: &'b str,
    args: &'b mut I,
) -> impl Iterator<Item = &'a str> + 'b {
    std::iter::from_fn(move || {
        while let Some(a) = args.next() {
            if a == "--" {
                continue;
            }
            if a.starts_with('-') && a.len() > 1 {
                if !a.contains('=') && takes_value(runner, a) {
                    args.next();
                }
                continue;
            }
            return Some(a);
        }
        None
    })
}

/// The value of `flag` (as `flag V` or `flag=V`) among `args`.
fn option<'a>(args: &[&'a str], flags: &[&str]) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(i, a)| {
        flags.iter().find_map(|f| {
            if a == f {
                args.get(i + 1).copied()
            } else {
                a.strip_prefix(f).and_then(|r| r.strip_prefix('='))
            }
        })
    })
}

/// The package a runner fetches: its `--package`/`--from`/`--spec` value,
/// else its first positional argument, by name without version or scope.
fn package<'a>(runner: &str, args: impl Iterator<Item = &'a str>) -> Option<String> {
    let args: Vec<&str> = args.collect();
    let named = option(&args, &["-p", "--package", "--from", "--spec"])
        .filter(|_| runner != "pipx" || args.contains(&"--spec"));
    let mut rest = args.iter().copied();
    let mut pos = positionals(runner, &mut rest);
    let first = match (runner, pos.next()) {
        ("pipx", Some("run")) => pos.next(),
        (_, first) => first,
    };
    named.or(first).map(package_name)
}

/// `@scope/name@1.2`, `name==1.2`, `name[extra]`, `git+https://host/o/name.git`,
/// `registry/image:tag`: the bare name.
fn package_name(spec: &str) -> String {
    let last = spec
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(spec);
    let last = last.strip_suffix(".git").unwrap_or(last);
    let end = last
        .char_indices()
        .find(|(i, c)| "=<>~![;:@ ".contains(*c) && *i > 0)
        .map_or(last.len(), |(i, _)| i);
    last[..end].to_string()
}

/// What an interpreter runs: the module of `python -m`, the image of
/// `docker run`, else the script, named by [`script_name`].
fn script<'a>(runner: &str, args: impl Iterator<Item = &'a str>) -> Option<String> {
    let args: Vec<&str> = args.collect();
    if runner == "python"
        && let Some(module) = option(&args, &["-m"])
    {
        return Some(module.to_string());
    }
    let mut rest = args.iter().copied();
    let mut pos = positionals(runner, &mut rest).peekable();
    if matches!(runner, "bun" | "deno" | "uv" | "docker" | "podman")
        && pos.peek().is_some_and(|a| *a == "run")
    {
        pos.next();
    }
    let target = pos.next()?;
    if matches!(runner, "docker" | "podman") {
        return Some(package_name(target));
    }
    match option(&args, &["--directory", "--project"]) {
        Some(dir) if runner == "uv" && !target.contains('/') => {
            Some(script_name(&format!("{dir}/{target}")))
        }
        _ => Some(script_name(target)),
    }
}

/// A script or program by name: the package directory under
/// `node_modules` if it is in one, else its file name without extension,
/// or for a generic one (`index.js`, `main.py`) the nearest directory that
/// is not a build directory.
fn script_name(path: &str) -> String {
    const GENERIC: &[&str] = &[
        "index", "main", "server", "cli", "app", "__main__", "mod", "run", "start",
    ];
    const BUILD_DIRS: &[&str] = &[
        "dist", "build", "lib", "src", "bin", "out", "target", "release", "debug", "scripts", ".",
        "..", "",
    ];
    let parts: Vec<&str> = path.split(['/', '\\']).collect();
    if let Some(at) = parts.iter().rposition(|p| *p == "node_modules") {
        let pkg = match parts.get(at + 1) {
            Some(scope) if scope.starts_with('@') => parts.get(at + 2),
            other => other,
        };
        if let Some(pkg) = pkg.filter(|p| **p != ".bin" && at + 2 < parts.len()) {
            return pkg.to_string();
        }
    }
    let file = parts.last().copied().unwrap_or(path);
    let stem = match file.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => file,
    };
    if GENERIC.contains(&stem)
        && let Some(dir) = parts[..parts.len() - 1]
            .iter()
            .rev()
            .find(|d| !BUILD_DIRS.contains(d))
    {
        return dir.to_string();
    }
    stem.to_string()
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// FNV-1a, 64 bit, with each field length-prefixed so ("ab","c") != ("a","bc").
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn field(&mut self, b: &[u8]) {
        self.bytes(&(b.len() as u64).to_le_bytes());
        self.bytes(b);
    }
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

    #[test]
    fn names_are_readable() {
        assert!(spec().id().starts_with("server-memory-"));
        let name = |command: &str, args: &[&str]| {
            Spec {
                command: command.into(),
                args: args.iter().map(|a| a.to_string()).collect(),
                ..spec()
            }
            .name()
        };
        let cases: &[(&str, &[&str], &str)] = &[
            ("/usr/local/bin/fixture", &[], "fixture"),
            // The package of a package runner, without its version.
            (
                "npx",
                &["-y", "@modelcontextprotocol/server-memory@2025.8.4"],
                "server-memory",
            ),
            (
                "npx",
                &["-y", "--package", "@acme/tools@1", "acme-notes"],
                "tools",
            ),
            (
                "npx",
                &[
                    "--registry",
                    "https://r.example",
                    "mcp-remote@latest",
                    "https://x",
                ],
                "mcp-remote",
            ),
            ("/usr/bin/bunx", &["@upstash/context7-mcp"], "context7-mcp"),
            ("pnpm", &["dlx", "@playwright/mcp@0.0.41"], "mcp"),
            ("uvx", &["mcp-server-fetch==2025.4.7"], "mcp-server-fetch"),
            (
                "uvx",
                &["--from", "dbt-mcp==1.12.0", "dbt-mcp", "serve"],
                "dbt-mcp",
            ),
            (
                "uvx",
                &[
                    "--python",
                    "3.12",
                    "--from",
                    "git+https://github.com/o/serena.git",
                    "serena",
                ],
                "serena",
            ),
            (
                "pipx",
                &["run", "--spec", "mcp-server-time[cli]", "mcp-server-time"],
                "mcp-server-time",
            ),
            // The package directory of a script under node_modules.
            (
                "node",
                &["/home/u/lib/node_modules/@modelcontextprotocol/server-memory/dist/index.js"],
                "server-memory",
            ),
            (
                "node",
                &["--import", "tsx", "node_modules/github-mcp/build/index.js"],
                "github-mcp",
            ),
            (
                "/home/u/app/node_modules/.bin/mcp-server-git",
                &[],
                "mcp-server-git",
            ),
            // The script's name otherwise; a generic one by its directory.
            (
                "node",
                &["/home/u/src/weather-server/dist/index.js"],
                "weather-server",
            ),
            ("node", &["build/main.mjs"], "main"),
            ("python3", &["-u", "/srv/notes_server.py"], "notes_server"),
            (
                "python",
                &["-m", "mcp_server_git", "--repository", "."],
                "mcp_server_git",
            ),
            (
                "uv",
                &["run", "--directory", "/home/u/weather", "main.py"],
                "weather",
            ),
            (
                "deno",
                &[
                    "run",
                    "--allow-net",
                    "https://deno.land/x/weather_mcp/mod.ts",
                ],
                "weather_mcp",
            ),
            (
                "docker",
                &[
                    "run",
                    "-i",
                    "--rm",
                    "-e",
                    "GITHUB_TOKEN",
                    "ghcr.io/github/github-mcp-server:v1",
                ],
                "github-mcp-server",
            ),
            ("npx", &[], "npx"),
        ];
        for (command, args, want) in cases {
            assert_eq!(&name(command, args), want, "{command} {args:?}");
        }
    }
}
