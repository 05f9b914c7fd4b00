//! The MCP clients on this machine: where each keeps its servers, reading
//! them into one shape, and the edits `connect` makes and `disconnect`
//! undoes. A client's file is only ever changed in the entries mcpshare
//! owns, after a preview, with a backup, and never when it changed since
//! it was read. Never starts a server and never speaks MCP.

pub mod codex;
pub mod import;
pub mod json_clients;
pub mod paths;
pub mod plan;
pub mod record;
pub mod toml;

use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Client {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    Vscode,
    Windsurf,
    Zed,
    Codex,
    Gemini,
    Cline,
}

impl Client {
    pub const ALL: [Client; 9] = [
        Client::ClaudeDesktop,
        Client::ClaudeCode,
        Client::Cursor,
        Client::Vscode,
        Client::Windsurf,
        Client::Zed,
        Client::Codex,
        Client::Gemini,
        Client::Cline,
    ];

    /// The name on the command line and in `--json` output.
    pub fn id(self) -> &'static str {
        match self {
            Client::ClaudeDesktop => "claude-desktop",
            Client::ClaudeCode => "claude-code",
            Client::Cursor => "cursor",
            Client::Vscode => "vscode",
            Client::Windsurf => "windsurf",
            Client::Zed => "zed",
            Client::Codex => "codex",
            Client::Gemini => "gemini",
            Client::Cline => "cline",
        }
    }

    pub fn parse(s: &str) -> Option<Client> {
        Client::ALL.into_iter().find(|c| c.id() == s)
    }

    /// The syntax of its `${...}` references (see [`import::reference`]).
    fn references(self) -> References {
        match self {
            Client::Cursor | Client::Vscode | Client::Cline => References::Editor,
            _ => References::Shell,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum References {
    /// `${VAR}` and `${VAR:-default}`, as mcpshare's config.
    Shell,
    /// VS Code's: `${env:VAR}`, `${userHome}`, `${input:id}`,
    /// `${workspaceFolder}`.
    Editor,
}

/// Which of a client's files: its user file, a project's (in the working
/// directory, shared with a team through version control), or Claude
/// Code's per-project servers inside its user file (`local`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    User,
    Project,
    /// Claude Code's `projects["DIR"].mcpServers`.
    Local(String),
}

impl Scope {
    pub fn label(&self) -> String {
        match self {
            Scope::User => "user".into(),
            Scope::Project => "project".into(),
            Scope::Local(dir) => format!("local {dir}"),
        }
    }
}

/// The layout of a client's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `mcpServers{NAME{command,args,env | url,headers}}`.
    McpServers,
    /// VS Code: `servers{...}` next to `inputs`.
    VscodeServers,
    /// Zed: `context_servers{NAME{command,args,env}}` in its settings.
    ZedContextServers,
    /// Codex CLI: `[mcp_servers.NAME]` tables.
    CodexToml,
}

impl Shape {
    /// The key of the servers object in a JSON file.
    pub fn key(self) -> &'static str {
        match self {
            Shape::McpServers => "mcpServers",
            Shape::VscodeServers => "servers",
            Shape::ZedContextServers => "context_servers",
            Shape::CodexToml => "mcp_servers",
        }
    }
}

/// One place servers are listed: a file, and in it the path of keys to
/// the servers object (`["projects", DIR, "mcpServers"]` for Claude
/// Code's local scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub client: Client,
    pub scope: Scope,
    pub path: PathBuf,
    pub shape: Shape,
    pub keys: Vec<String>,
}

impl Location {
    pub fn label(&self) -> String {
        format!("{} ({})", self.client.id(), self.scope.label())
    }
}

/// How a server is reached, in mcpshare's terms: what identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Stdio {
        command: String,
        args: Vec<String>,
        /// Values as written, references (`${VAR}`) unexpanded.
        env: BTreeMap<String, String>,
        cwd: Option<String>,
    },
    Remote {
        sse: bool,
        url: String,
        headers: BTreeMap<String, String>,
    },
}

/// A server as a client lists it, in one shape for every client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientServer {
    /// Its name in the client's file.
    pub name: String,
    pub transport: Transport,
    pub disabled: bool,
    pub start_timeout_secs: Option<u64>,
    pub request_timeout_secs: Option<u64>,
    /// Why mcpshare cannot carry it (a prompt only the client answers,
    /// for example); such a server is left to its client.
    pub problem: Option<String>,
}

impl ClientServer {
    pub fn is_stdio(&self) -> bool {
        matches!(self.transport, Transport::Stdio { .. })
    }
}

/// The text of a client's file, None when it does not exist.
pub fn read_text(path: &std::path::Path) -> crate::error::Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| crate::error::Error::Client {
                path: path.to_path_buf(),
                message: "is not UTF-8 text".into(),
                hint: None,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::error::Error::Path(path.to_path_buf(), e)),
    }
}

/// Every place `client` lists servers on this machine: its existing
/// files, and in Claude Code's user file each project with servers.
/// A file that cannot be parsed is returned too (reading it reports why).
pub fn locations(client: Client, env: &paths::Env) -> Vec<Location> {
    let mut out = Vec::new();
    for f in paths::files(client, env) {
        if !f.path.is_file() {
            continue;
        }
        out.push(Location {
            client,
            scope: f.scope.clone(),
            path: f.path.clone(),
            shape: f.shape,
            keys: vec![f.shape.key().to_string()],
        });
        if client == Client::ClaudeCode && f.scope == Scope::User {
            let Ok(Some(text)) = read_text(&f.path) else {
                continue;
            };
            for dir in json_clients::claude_projects(&text) {
                out.push(Location {
                    client,
                    scope: Scope::Local(dir.clone()),
                    path: f.path.clone(),
                    shape: f.shape,
                    keys: vec!["projects".into(), dir, "mcpServers".into()],
                });
            }
        }
    }
    out
}

/// Is `client` installed here: does its user file exist, or the
/// directory the client creates it in (for Claude Code, whose file is in
/// HOME itself, `~/.claude`)?
pub fn installed(client: Client, env: &paths::Env) -> bool {
    let file = &paths::files(client, env)[0].path;
    if file.is_file() {
        return true;
    }
    match client {
        Client::ClaudeCode => env.home.join(".claude").is_dir(),
        _ => file.parent().is_some_and(std::path::Path::is_dir),
    }
}

/// The servers listed at `loc`, given the file's text.
pub fn read_servers(loc: &Location, text: &str) -> Result<Vec<ClientServer>, String> {
    match loc.shape {
        Shape::CodexToml => codex::servers(text),
        _ => json_clients::servers(loc, text),
    }
}
