//! The launcher patterns: what the command line of an MCP server started
//! by a client looks like when no config names it. Pure text rules, each
//! listed in mcpshare(1) under `orphans`; a match is evidence, not a
//! verdict (the process must also be orphaned).

/// The patterns, by the name the report shows.
pub const PATTERNS: &[&str] = &["@*/server-*", "@*/mcp*", "*mcp-server*", "mcp-*", "*-mcp"];

/// An argument without an npm version (`pkg@1.2`, `@scope/pkg@latest`),
/// in lower case.
fn unversioned(word: &str) -> String {
    let w = word.to_ascii_lowercase();
    // Not the `@` that starts a scope: the one after the name.
    match w.get(1..).and_then(|r| r.rfind('@')).map(|i| i + 1) {
        Some(at) if !w[at + 1..].contains('/') => w[..at].to_string(),
        _ => w,
    }
}

/// A file name without the extension of a script or program.
fn stem(name: &str) -> &str {
    for ext in [".js", ".mjs", ".cjs", ".ts", ".py", ".exe", ".cmd"] {
        if let Some(s) = name.strip_suffix(ext) {
            return s;
        }
    }
    name
}

/// The first pattern one argument matches.
pub fn word_matches(word: &str) -> Option<&'static str> {
    if word.len() < 2 {
        return None;
    }
    let w = unversioned(word);
    // A value of an option (`--entry=/x/mcp-server.js`) counts as a word.
    let w = w.rsplit_once('=').map_or(w.as_str(), |(_, v)| v);
    let parts: Vec<&str> = w.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    for pair in parts.windows(2) {
        let (scope, name) = (pair[0], pair[1]);
        if scope.len() > 1 && scope.starts_with('@') {
            if name.starts_with("server-") {
                return Some("@*/server-*");
            }
            if name.starts_with("mcp") || name.ends_with("-mcp") {
                return Some("@*/mcp*");
            }
        }
    }
    // Names, not directories: the program or script itself, and the
    // package a node_modules path runs.
    let mut names: Vec<&str> = parts.last().map(|n| stem(n)).into_iter().collect();
    if let Some(i) = parts.iter().position(|p| *p == "node_modules")
        && let Some(pkg) = parts.get(i + 1)
    {
        names.push(pkg);
    }
    for name in names {
        if name.contains("mcp-server") || name.contains("mcp_server") {
            return Some("*mcp-server*");
        }
        if name.len() > 4 && name.starts_with("mcp-") {
            return Some("mcp-*");
        }
        if name.len() > 4 && (name.ends_with("-mcp") || name.ends_with("_mcp")) {
            return Some("*-mcp");
        }
    }
    None
}

/// The first pattern any argument of `argv` matches, with that argument.
pub fn matches(argv: &[String]) -> Option<(&'static str, &str)> {
    argv.iter()
        .find_map(|w| word_matches(w).map(|p| (p, w.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launcher_patterns_match_mcp_servers() {
        for (word, want) in [
            ("@modelcontextprotocol/server-filesystem", "@*/server-*"),
            (
                "@modelcontextprotocol/server-memory@2025.1.1",
                "@*/server-*",
            ),
            (
                "/tmp/t/node_modules/@scope/server-x/index.js",
                "@*/server-*",
            ),
            ("@playwright/mcp@latest", "@*/mcp*"),
            ("@upstash/context7-mcp", "@*/mcp*"),
            ("mcp-server-fetch", "*mcp-server*"),
            ("/usr/local/bin/github-mcp-server", "*mcp-server*"),
            ("mcp_server_time", "*mcp-server*"),
            ("mcp-remote", "mcp-*"),
            ("/home/u/.npm/_npx/1/node_modules/.bin/mcp-remote", "mcp-*"),
            ("firecrawl-mcp", "*-mcp"),
            ("/x/node_modules/firecrawl-mcp/dist/index.js", "*-mcp"),
            ("--entry=/srv/mcp-server.js", "*mcp-server*"),
        ] {
            assert_eq!(word_matches(word), Some(want), "{word}");
        }
    }

    #[test]
    fn ordinary_commands_do_not_match() {
        for word in [
            "node",
            "/usr/bin/python3",
            "-y",
            "@scope/client-x",
            "/home/u/mcp-projects/notes.txt",
            "server-x",
            "mcp",
            "@",
            "mcp-",
            "/srv/mcp/config.json",
        ] {
            assert_eq!(word_matches(word), None, "{word}");
        }
        let argv: Vec<String> = ["npx", "-y", "mcp-remote", "https://x"]
            .map(String::from)
            .to_vec();
        assert_eq!(matches(&argv), Some(("mcp-*", "mcp-remote")));
    }
}
