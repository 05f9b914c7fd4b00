//! The servers MCP clients are configured to start, and whether a command
//! line is one of them. A stop-gap reader of the JSON `mcpServers` shape
//! only: the clients module (issue 16, `src/clients/`) replaces
//! [`known_servers`] with its readers of all nine clients when it lands;
//! the matcher takes any list of [`KnownServer`]s.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// One server entry of one client's config.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KnownServer {
    pub client: String,
    pub server: String,
    pub command: String,
    pub args: Vec<String>,
}

/// The configs read here, as (client, path under the user's home).
pub const CONFIGS: &[(&str, &str)] = &[
    (
        "claude-desktop",
        ".config/Claude/claude_desktop_config.json",
    ),
    (
        "claude-desktop",
        "Library/Application Support/Claude/claude_desktop_config.json",
    ),
    ("claude-code", ".claude.json"),
    ("cursor", ".cursor/mcp.json"),
    ("mcpshare", ".config/mcpshare/config.json"),
];

/// Every stdio server in the configs of [`CONFIGS`] under `home` (the
/// user's home directory). A missing or unparsable file adds nothing.
pub fn known_servers(home: &Path) -> Vec<KnownServer> {
    let mut out = Vec::new();
    for (client, rel) in CONFIGS {
        let path: PathBuf = home.join(rel);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        servers_of(client, &v["mcpServers"], &mut out);
        // Claude Code also keeps servers per project.
        if *client == "claude-code"
            && let Some(projects) = v["projects"].as_object()
        {
            for p in projects.values() {
                servers_of(client, &p["mcpServers"], &mut out);
            }
        }
    }
    out
}

fn servers_of(client: &str, servers: &Value, out: &mut Vec<KnownServer>) {
    let Some(servers) = servers.as_object() else {
        return;
    };
    for (name, s) in servers {
        let Some(command) = s["command"].as_str().filter(|c| !c.is_empty()) else {
            continue;
        };
        let args = s["args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let k = KnownServer {
            client: client.into(),
            server: name.clone(),
            command: command.into(),
            args,
        };
        if !out.contains(&k) {
            out.push(k);
        }
    }
}

/// Launchers whose process rewrites its own command line (npx becomes
/// `npm exec`) or runs the package under another name: for these, the
/// command itself need not appear, only the arguments.
const LAUNCHERS: &[&str] = &[
    "npx", "npm", "pnpm", "pnpx", "yarn", "bunx", "bun", "uvx", "uv", "pipx", "node", "deno",
    "python", "python3", "sh", "bash",
];

fn basename(w: &str) -> &str {
    w.rsplit(['/', '\\']).next().unwrap_or(w)
}

/// Does the command line `argv` run server `k`? The arguments of `k` that
/// are not flags must all appear in `argv`, in order; and the command's
/// name must be argv[0]'s or argv[1]'s (an interpreter running a script),
/// unless the command is a launcher and at least one such argument was
/// found. A bare launcher with no arguments matches nothing.
pub fn runs(k: &KnownServer, argv: &[String]) -> bool {
    if argv.is_empty() {
        return false;
    }
    let wanted: Vec<&str> = k
        .args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut rest = argv[1..].iter();
    let in_order = wanted.iter().all(|w| rest.any(|a| a == w));
    if !in_order {
        return false;
    }
    let cmd = basename(&k.command);
    let cmd = cmd.strip_suffix(".exe").unwrap_or(cmd);
    let named = argv
        .iter()
        .take(2)
        .any(|a| basename(a) == cmd || a == &k.command);
    if LAUNCHERS.contains(&cmd) {
        !wanted.is_empty()
    } else {
        named
    }
}

/// The first of `known` that `argv` runs.
pub fn matching<'a>(known: &'a [KnownServer], argv: &[String]) -> Option<&'a KnownServer> {
    known.iter().find(|k| runs(k, argv))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(command: &str, args: &[&str]) -> KnownServer {
        KnownServer {
            client: "cursor".into(),
            server: "s".into(),
            command: command.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn command_lines_match_their_config_entries() {
        let fs = k(
            "npx",
            &["-y", "@modelcontextprotocol/server-filesystem", "/home/me"],
        );
        assert!(runs(
            &fs,
            &argv("npm exec @modelcontextprotocol/server-filesystem /home/me")
        ));
        assert!(runs(
            &fs,
            &argv("npx -y @modelcontextprotocol/server-filesystem /home/me")
        ));
        assert!(!runs(
            &fs,
            &argv("npm exec @modelcontextprotocol/server-filesystem /tmp")
        ));
        let bin = k("/opt/srv/bin/github-mcp-server", &["stdio"]);
        assert!(runs(&bin, &argv("/opt/srv/bin/github-mcp-server stdio")));
        assert!(!runs(&bin, &argv("/opt/other stdio")));
        let script = k("/srv/server.py", &[]);
        assert!(runs(&script, &argv("python3 /srv/server.py")));
        assert!(
            !runs(&k("npx", &["-y"]), &argv("npx -y anything")),
            "a bare launcher names no server"
        );
        assert!(!runs(&fs, &[]));
    }

    #[test]
    fn configs_are_read_from_the_users_home() {
        let home = std::env::temp_dir().join(format!("mcpshare-known-{}", std::process::id()));
        std::fs::create_dir_all(home.join(".cursor")).unwrap();
        std::fs::write(
            home.join(".cursor/mcp.json"),
            r#"{"mcpServers": {"fs": {"command": "npx", "args": ["-y", "@x/server-fs"]},
                "web": {"url": "https://example.invalid/mcp"}}}"#,
        )
        .unwrap();
        std::fs::write(
            home.join(".claude.json"),
            r#"{"mcpServers": {"git": {"command": "uvx", "args": ["mcp-server-git"]}},
                "projects": {"/p": {"mcpServers": {"t": {"command": "t-mcp"}}}}}"#,
        )
        .unwrap();
        let found = known_servers(&home);
        let names: Vec<(&str, &str)> = found
            .iter()
            .map(|k| (k.client.as_str(), k.server.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("claude-code", "git"),
                ("claude-code", "t"),
                ("cursor", "fs")
            ]
        );
        assert_eq!(found[2].args, ["-y", "@x/server-fs"]);
        std::fs::remove_dir_all(&home).unwrap();
    }
}
