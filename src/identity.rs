//! What makes two `mcpshare run` invocations the same upstream: command,
//! args, working directory (unless global) and the environment that
//! matters. Variables that differ between terminals and client apps but not
//! between configurations are left out; everything else, secrets included,
//! is in — so clients whose configs differ in an API key never share.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    "CLAUDECODE",
    "ELECTRON_RUN_AS_NODE",
    "ELECTRON_NO_ATTACH_CONSOLE",
    "CHROME_DESKTOP",
    "GIO_LAUNCHED_DESKTOP_FILE",
    "GIO_LAUNCHED_DESKTOP_FILE_PID",
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
    "VSCODE_",
    "CURSOR_",
    "CLAUDE_CODE_",
    "HIST",
    "WT_",
];

pub fn env_matters(name: &str) -> bool {
    !IGNORED_ENV.contains(&name) && !IGNORED_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
}

impl Spec {
    /// The shared-upstream id: a readable name plus a hash of the identity.
    pub fn id(&self) -> String {
        let mut h = Fnv::new();
        h.field(self.command.as_bytes());
        h.field(&(self.args.len() as u64).to_le_bytes());
        for a in &self.args {
            h.field(a.as_bytes());
        }
        h.field(if self.global {
            b"*"
        } else {
            self.cwd.as_bytes()
        });
        for (k, v) in self.env.iter().filter(|(k, _)| env_matters(k)) {
            h.field(k.as_bytes());
            h.field(v.as_bytes());
        }
        format!("{}-{:016x}", self.name(), h.0)
    }

    /// A short readable name: the command's file name, or for runners like
    /// npx and uvx the first argument that is not a flag.
    pub fn name(&self) -> String {
        const RUNNERS: &[&str] = &[
            "npx", "uvx", "bunx", "pnpx", "pipx", "node", "python", "python3", "deno", "bun", "uv",
            "docker",
        ];
        let base = |s: &str| s.rsplit(['/', '\\']).next().unwrap_or(s).to_string();
        let mut name = base(&self.command);
        if RUNNERS.contains(&name.trim_end_matches(".exe"))
            && let Some(arg) = self
                .args
                .iter()
                .find(|a| !a.starts_with('-') && !matches!(a.as_str(), "run" | "x" | "exec"))
        {
            name = base(arg);
        }
        let clean: String = name
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
    fn names_are_readable() {
        assert!(spec().id().starts_with("server-memory-"));
        let s = Spec {
            command: "/usr/local/bin/fixture".into(),
            args: vec![],
            ..spec()
        };
        assert_eq!(s.name(), "fixture");
    }
}
