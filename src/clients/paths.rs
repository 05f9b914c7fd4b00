//! Where each client keeps its MCP servers, on Linux, macOS and Windows.
//! Pure: the directories come in an [`Env`], so every OS's paths can be
//! tested on any OS. Never reads a file.

use super::{Client, Scope, Shape};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    Macos,
    Windows,
}

/// The directories the paths derive from.
#[derive(Debug, Clone)]
pub struct Env {
    pub os: Os,
    pub home: PathBuf,
    /// `$XDG_CONFIG_HOME` (Linux), when set.
    pub xdg_config: Option<PathBuf>,
    /// `%APPDATA%` (Windows), when set.
    pub appdata: Option<PathBuf>,
    /// `$CODEX_HOME`, when set.
    pub codex_home: Option<PathBuf>,
    /// The project directory for project-scope files.
    pub cwd: PathBuf,
}

impl Env {
    /// This machine's: `HOME` (or `USERPROFILE`), `XDG_CONFIG_HOME`,
    /// `APPDATA`, `CODEX_HOME` and the working directory.
    pub fn current() -> Result<Env> {
        let os = if cfg!(windows) {
            Os::Windows
        } else if cfg!(target_os = "macos") {
            Os::Macos
        } else {
            Os::Linux
        };
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let home = var("HOME").or_else(|| var("USERPROFILE")).ok_or_else(|| {
            Error::Usage(
                "neither HOME nor USERPROFILE is set: cannot find the clients' configs".into(),
            )
        })?;
        let cwd = std::env::current_dir()
            .map_err(|e| Error::io("cannot read the working directory", e))?;
        Ok(Env {
            os,
            home,
            xdg_config: var("XDG_CONFIG_HOME").filter(|p| p.is_absolute()),
            appdata: var("APPDATA"),
            codex_home: var("CODEX_HOME"),
            cwd,
        })
    }

    /// `~/.config` or `$XDG_CONFIG_HOME` (Linux), `~/Library/Application
    /// Support` (macOS), `%APPDATA%` (Windows).
    fn app_config(&self) -> PathBuf {
        match self.os {
            Os::Linux => self
                .xdg_config
                .clone()
                .unwrap_or_else(|| self.home.join(".config")),
            Os::Macos => self.home.join("Library").join("Application Support"),
            Os::Windows => self
                .appdata
                .clone()
                .unwrap_or_else(|| self.home.join("AppData").join("Roaming")),
        }
    }

    fn vscode_user(&self) -> PathBuf {
        self.app_config().join("Code").join("User")
    }
}

/// One file a client reads servers from, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub scope: Scope,
    pub path: PathBuf,
    pub shape: Shape,
}

fn join(base: &Path, parts: &[&str]) -> PathBuf {
    parts.iter().fold(base.to_path_buf(), |p, s| p.join(s))
}

/// The files of `client`: its user file first, then project files in
/// `env.cwd`. (Claude Code's per-project servers live inside its user
/// file; [`super::locations`] finds them.)
pub fn files(client: Client, env: &Env) -> Vec<File> {
    let user = |path: PathBuf, shape| File {
        scope: Scope::User,
        path,
        shape,
    };
    let project = |parts: &[&str], shape| File {
        scope: Scope::Project,
        path: join(&env.cwd, parts),
        shape,
    };
    let h = &env.home;
    match client {
        Client::ClaudeDesktop => vec![user(
            join(&env.app_config(), &["Claude", "claude_desktop_config.json"]),
            Shape::McpServers,
        )],
        Client::ClaudeCode => vec![
            user(h.join(".claude.json"), Shape::McpServers),
            project(&[".mcp.json"], Shape::McpServers),
        ],
        Client::Cursor => vec![
            user(join(h, &[".cursor", "mcp.json"]), Shape::McpServers),
            project(&[".cursor", "mcp.json"], Shape::McpServers),
        ],
        Client::Vscode => vec![
            user(env.vscode_user().join("mcp.json"), Shape::VscodeServers),
            project(&[".vscode", "mcp.json"], Shape::VscodeServers),
        ],
        Client::Windsurf => vec![user(
            join(h, &[".codeium", "windsurf", "mcp_config.json"]),
            Shape::McpServers,
        )],
        Client::Zed => {
            let dir = match env.os {
                // Zed keeps ~/.config/zed on macOS too.
                Os::Macos => h.join(".config").join("zed"),
                Os::Linux => env.app_config().join("zed"),
                Os::Windows => env.app_config().join("Zed"),
            };
            vec![user(dir.join("settings.json"), Shape::ZedContextServers)]
        }
        Client::Codex => {
            let dir = env.codex_home.clone().unwrap_or_else(|| h.join(".codex"));
            vec![user(dir.join("config.toml"), Shape::CodexToml)]
        }
        Client::Gemini => vec![
            user(join(h, &[".gemini", "settings.json"]), Shape::McpServers),
            project(&[".gemini", "settings.json"], Shape::McpServers),
        ],
        Client::Cline => vec![user(
            join(
                &env.vscode_user(),
                &[
                    "globalStorage",
                    "saoudrizwan.claude-dev",
                    "settings",
                    "cline_mcp_settings.json",
                ],
            ),
            Shape::McpServers,
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(os: Os) -> Env {
        let (home, cwd) = match os {
            Os::Windows => ("C:\\Users\\ann", "C:\\work\\p"),
            _ => ("/home/ann", "/work/p"),
        };
        Env {
            os,
            home: PathBuf::from(home),
            xdg_config: None,
            appdata: (os == Os::Windows).then(|| PathBuf::from("C:\\Users\\ann\\AppData\\Roaming")),
            codex_home: None,
            cwd: PathBuf::from(cwd),
        }
    }

    fn user(c: Client, os: Os) -> String {
        files(c, &env(os))[0]
            .path
            .to_string_lossy()
            .replace('\\', "/")
    }

    #[test]
    fn user_files_per_os() {
        assert_eq!(
            user(Client::ClaudeDesktop, Os::Linux),
            "/home/ann/.config/Claude/claude_desktop_config.json"
        );
        assert_eq!(
            user(Client::ClaudeDesktop, Os::Macos),
            "/home/ann/Library/Application Support/Claude/claude_desktop_config.json"
        );
        assert_eq!(
            user(Client::ClaudeDesktop, Os::Windows),
            "C:/Users/ann/AppData/Roaming/Claude/claude_desktop_config.json"
        );
        assert_eq!(
            user(Client::Vscode, Os::Macos),
            "/home/ann/Library/Application Support/Code/User/mcp.json"
        );
        assert_eq!(
            user(Client::Zed, Os::Macos),
            "/home/ann/.config/zed/settings.json"
        );
        assert_eq!(
            user(Client::Zed, Os::Windows),
            "C:/Users/ann/AppData/Roaming/Zed/settings.json"
        );
        assert_eq!(
            user(Client::Codex, Os::Windows),
            "C:/Users/ann/.codex/config.toml"
        );
        assert_eq!(
            user(Client::Cline, Os::Linux),
            "/home/ann/.config/Code/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json"
        );
        let mut e = env(Os::Linux);
        e.xdg_config = Some(PathBuf::from("/x"));
        e.codex_home = Some(PathBuf::from("/c"));
        assert_eq!(
            files(Client::Zed, &e)[0].path,
            PathBuf::from("/x/zed/settings.json")
        );
        assert_eq!(
            files(Client::Codex, &e)[0].path,
            PathBuf::from("/c/config.toml")
        );
    }

    #[test]
    fn project_files_are_in_the_working_directory() {
        let f = files(Client::ClaudeCode, &env(Os::Linux));
        assert_eq!(f[1].path, PathBuf::from("/work/p/.mcp.json"));
        assert_eq!(f[1].scope, Scope::Project);
        let f = files(Client::Cursor, &env(Os::Linux));
        assert_eq!(f[1].path, PathBuf::from("/work/p/.cursor/mcp.json"));
    }
}
