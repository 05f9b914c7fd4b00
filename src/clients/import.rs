//! `import`, as pure rules: a client's `${...}` references in mcpshare's
//! syntax, names mcpshare accepts, and one entry per server identity (the
//! same server in four clients becomes one entry). Never expands a
//! reference: a secret that was `${TOKEN}` in a client stays `${TOKEN}`.

use super::{Client, ClientServer, References, Transport};

/// `s` with `client`'s references in mcpshare's syntax (`${VAR}`,
/// `${VAR:-default}`); an error names a reference only the client can
/// answer (VS Code's `${input:id}` prompts, `${workspaceFolder}`).
pub fn reference(client: Client, s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let Some(end) = rest[i..].find('}') else {
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let inner = &rest[i + 2..i + end];
        let name_end = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(inner.len());
        let (name, tail) = inner.split_at(name_end);
        let shell = !name.is_empty() && (tail.is_empty() || tail.starts_with(":-"));
        match (client.references(), inner) {
            (References::Editor, _) if inner.starts_with("env:") => {
                out.push_str(&format!("${{{}}}", &inner[4..]))
            }
            (References::Editor, "userHome") => out.push_str("${HOME}"),
            (References::Editor, _)
                if name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                    && shell =>
            {
                out.push_str(&rest[i..i + end + 1])
            }
            (References::Shell, _) if shell => out.push_str(&rest[i..i + end + 1]),
            _ => {
                return Err(format!(
                    "uses ${{{inner}}}, which only {} can expand",
                    client.id()
                ));
            }
        }
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The longest name mcpshare's config accepts.
pub const NAME_MAX: usize = 32;

/// `name` as mcpshare accepts it: lowercase letters, digits and single
/// inner hyphens, at most [`NAME_MAX`] characters.
pub fn config_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(NAME_MAX);
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() { "server".into() } else { out }
}

/// What importing found for one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new entry `name` (renamed from the client's when it differs).
    Add { name: String },
    /// The same server as entry `name`, already in mcpshare or added
    /// from an earlier client.
    Same { name: String },
    /// Not carried: why.
    Skipped(String),
}

/// Decide each found server's fate: `existing` are mcpshare's entries
/// (name, identity); `found` the servers read from clients, in order.
/// Identity is the launch (command, args, env, cwd; or url and headers):
/// equal identities become one entry, whatever each client called it.
/// A name taken by another identity gets the first free `-2`, `-3`...
pub fn plan(existing: &[(String, Transport)], found: &[ClientServer]) -> Vec<Outcome> {
    let mut known: Vec<(String, Transport)> = existing.to_vec();
    let mut out = Vec::new();
    for s in found {
        if let Some(why) = &s.problem {
            out.push(Outcome::Skipped(why.clone()));
            continue;
        }
        if let Some((name, _)) = known.iter().find(|(_, t)| *t == s.transport) {
            out.push(Outcome::Same { name: name.clone() });
            continue;
        }
        let base = config_name(&s.name);
        let mut name = base.clone();
        let mut n = 2;
        while known.iter().any(|(k, _)| *k == name) {
            let suffix = format!("-{n}");
            let mut stem = base.clone();
            stem.truncate(NAME_MAX - suffix.len());
            name = format!("{}{suffix}", stem.trim_end_matches('-'));
            n += 1;
        }
        known.push((name.clone(), s.transport.clone()));
        out.push(Outcome::Add { name });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stdio(name: &str, command: &str) -> ClientServer {
        ClientServer {
            name: name.into(),
            transport: Transport::Stdio {
                command: command.into(),
                args: vec![],
                env: Default::default(),
                cwd: None,
            },
            disabled: false,
            start_timeout_secs: None,
            request_timeout_secs: None,
            problem: None,
        }
    }

    #[test]
    fn references_convert_or_say_why_not() {
        let c = Client::Cursor;
        assert_eq!(
            reference(c, "Bearer ${env:TOKEN}").unwrap(),
            "Bearer ${TOKEN}"
        );
        assert_eq!(reference(c, "${userHome}/x").unwrap(), "${HOME}/x");
        assert!(
            reference(Client::Vscode, "${input:key}")
                .unwrap_err()
                .contains("${input:key}")
        );
        assert!(reference(Client::Vscode, "${workspaceFolder}/a").is_err());
        let s = Client::ClaudeCode;
        assert_eq!(
            reference(s, "${A:-d} ${B} $C ${").unwrap(),
            "${A:-d} ${B} $C ${"
        );
        assert!(reference(s, "${env:A}").is_err());
    }

    #[test]
    fn names_fit_the_config() {
        assert_eq!(config_name("GitHub_MCP.server"), "github-mcp-server");
        assert_eq!(config_name("--x--"), "x");
        assert_eq!(config_name("é"), "server");
        assert_eq!(config_name(&"a".repeat(40)).len(), NAME_MAX);
    }

    #[test]
    fn one_entry_per_identity_and_clashing_names_get_a_suffix() {
        let existing = vec![("fs".to_string(), stdio("fs", "fs-server").transport)];
        let mut bad = stdio("p", "x");
        bad.problem = Some("why".into());
        let found = [
            stdio("FS", "fs-server"),
            stdio("fs", "other"),
            stdio("git", "git-server"),
            stdio("Git", "git-server"),
            stdio("fs", "third"),
            bad,
        ];
        assert_eq!(
            plan(&existing, &found),
            [
                Outcome::Same { name: "fs".into() },
                Outcome::Add {
                    name: "fs-2".into()
                },
                Outcome::Add { name: "git".into() },
                Outcome::Same { name: "git".into() },
                Outcome::Add {
                    name: "fs-3".into()
                },
                Outcome::Skipped("why".into()),
            ]
        );
    }
}
