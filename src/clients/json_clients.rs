//! The JSON clients (every one but Codex): reading their entries into
//! [`ClientServer`], and finding the byte ranges `connect` edits with the
//! config's format-preserving editor. Zed and VS Code allow comments and
//! trailing commas: those are blanked to spaces before parsing, so every
//! offset found in the blanked text is the same in the user's text.

use super::import::reference;
use super::{Client, ClientServer, Location, Shape, Transport};
use serde_json::Value;
use std::collections::BTreeMap;

/// `text` with its `//` and `/* */` comments and trailing commas turned
/// into spaces (newlines kept): strict JSON at the same offsets.
pub fn blank_comments(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    // The offset of the last comma outside strings, while only blanks follow it.
    let mut comma: Option<usize> = None;
    while i < b.len() {
        match b[i] {
            b'"' => {
                comma = None;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    out[i] = b' ';
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 2);
                for o in &mut out[i..end] {
                    if *o != b'\n' && *o != b'\r' {
                        *o = b' ';
                    }
                }
                i = end;
            }
            b',' => {
                comma = Some(i);
                i += 1;
            }
            b'}' | b']' => {
                if let Some(c) = comma.take() {
                    out[c] = b' ';
                }
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                comma = None;
                i += 1;
            }
        }
    }
    // Only ASCII bytes outside strings were replaced by ASCII spaces.
    String::from_utf8(out).expect("blanking keeps UTF-8")
}

/// The file as strict JSON (comments blanked), parsed.
pub fn parse(text: &str) -> Result<(String, Value), String> {
    let strict = blank_comments(text);
    if strict.trim().is_empty() {
        return Ok((strict, Value::Object(Default::default())));
    }
    let v: Value = serde_json::from_str(&strict).map_err(|e| {
        format!(
            "invalid JSON at line {} column {}: {}",
            e.line(),
            e.column(),
            e.to_string().split(" at line").next().unwrap_or("")
        )
    })?;
    if !v.is_object() {
        return Err("the file must hold one JSON object".into());
    }
    Ok((strict, v))
}

/// The projects of Claude Code's `~/.claude.json` that list servers.
pub fn claude_projects(text: &str) -> Vec<String> {
    let Ok((_, v)) = parse(text) else {
        return Vec::new();
    };
    let Some(projects) = v.get("projects").and_then(Value::as_object) else {
        return Vec::new();
    };
    projects
        .iter()
        .filter(|(_, p)| {
            p.get("mcpServers")
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
        })
        .map(|(dir, _)| dir.clone())
        .collect()
}

/// The object at `keys`, if there is one.
pub fn at<'a>(v: &'a Value, keys: &[String]) -> Option<&'a Value> {
    keys.iter().try_fold(v, |v, k| v.get(k))
}

/// The servers at `loc` in `text`.
pub fn servers(loc: &Location, text: &str) -> Result<Vec<ClientServer>, String> {
    let (_, v) = parse(text)?;
    let Some(obj) = at(&v, &loc.keys) else {
        return Ok(Vec::new());
    };
    let Some(obj) = obj.as_object() else {
        return Err(format!("\"{}\" is not an object", loc.keys.join(".")));
    };
    Ok(obj
        .iter()
        .filter_map(|(name, entry)| server(loc.client, loc.shape, name, entry))
        .collect())
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn str_of<'a>(e: &'a Value, k: &str) -> Option<&'a str> {
    e.get(k).and_then(Value::as_str)
}

/// One entry as a [`ClientServer`]; None for what is not a server we
/// can read (a Zed extension's settings, an entry that is not an object).
pub fn server(client: Client, shape: Shape, name: &str, e: &Value) -> Option<ClientServer> {
    e.as_object()?;
    let mut problems: Vec<String> = Vec::new();
    let mut fix = |s: &str| match reference(client, s) {
        Ok(s) => s,
        Err(why) => {
            problems.push(why);
            s.to_string()
        }
    };
    // Zed's older entries nest the launch: `command: {path, args, env}`.
    let nested = (shape == Shape::ZedContextServers)
        .then(|| e.get("command").filter(|c| c.is_object()))
        .flatten();
    let url = str_of(e, "url")
        .or_else(|| str_of(e, "serverUrl"))
        .or_else(|| str_of(e, "httpUrl"));
    let command = match nested {
        Some(c) => str_of(c, "path"),
        None => str_of(e, "command"),
    };
    let transport = match (command, url) {
        (Some(command), _) => {
            let src = nested.unwrap_or(e);
            let args = strings(src.get("args"));
            let env = map(src.get("env"));
            let cwd = str_of(e, "cwd").map(&mut fix);
            let args = args.iter().map(|a| fix(a)).collect();
            let env = env.iter().map(|(k, v)| (k.clone(), fix(v))).collect();
            let command = fix(command);
            if e.get("envFile").is_some() {
                fix("${envFile}");
            }
            Transport::Stdio {
                command,
                args,
                env,
                cwd,
            }
        }
        (None, Some(url)) => {
            let ty = str_of(e, "type").or_else(|| str_of(e, "transport"));
            let sse = match ty {
                Some(t) => t == "sse",
                // Gemini's `url` is SSE (`httpUrl` is HTTP); so is Cline's
                // `url` without a type.
                None => e.get("url").is_some() && matches!(client, Client::Gemini | Client::Cline),
            };
            let headers = map(e.get("headers"))
                .iter()
                .map(|(k, v)| (k.clone(), fix(v)))
                .collect();
            Transport::Remote {
                sse,
                url: fix(url),
                headers,
            }
        }
        (None, None) => return None,
    };
    problems.sort();
    problems.dedup();
    let disabled = e.get("disabled").and_then(Value::as_bool) == Some(true)
        || e.get("enabled").and_then(Value::as_bool) == Some(false);
    let timeout = e
        .get("timeout")
        .and_then(Value::as_f64)
        .filter(|t| *t > 0.0);
    let request_timeout_secs = match (client, timeout) {
        // Gemini's timeout is in milliseconds, Cline's in seconds.
        (Client::Gemini, Some(ms)) => Some((ms / 1000.0).ceil() as u64),
        (Client::Cline, Some(s)) => Some(s.ceil() as u64),
        _ => None,
    };
    Some(ClientServer {
        name: name.to_string(),
        transport,
        disabled,
        start_timeout_secs: None,
        request_timeout_secs,
        problem: (!problems.is_empty()).then(|| problems.join("; ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::Scope;
    use std::path::PathBuf;

    fn loc(client: Client, shape: Shape, keys: &[&str]) -> Location {
        Location {
            client,
            scope: Scope::User,
            path: PathBuf::from("/f"),
            shape,
            keys: keys.iter().map(|k| k.to_string()).collect(),
        }
    }

    #[test]
    fn comments_and_trailing_commas_blank_at_the_same_offsets() {
        let text = "{\n  // a \"comment\"\n  \"a\": \"x // not\", /* b */\n  \"c\": [1, 2,],\n}\n";
        let strict = blank_comments(text);
        assert_eq!(strict.len(), text.len());
        let v: Value = serde_json::from_str(&strict).unwrap();
        assert_eq!(v["a"], "x // not");
        assert_eq!(strict.find("\"c\""), text.find("\"c\""));
    }

    #[test]
    fn every_family_reads_into_one_shape() {
        let cursor = r#"{"mcpServers": {"gh": {"command": "npx", "args": ["-y", "gh"], "env": {"T": "${env:GH_TOKEN}"}}, "web": {"url": "https://h/mcp", "headers": {"A": "${env:K}"}}}}"#;
        let s = servers(
            &loc(Client::Cursor, Shape::McpServers, &["mcpServers"]),
            cursor,
        )
        .unwrap();
        assert_eq!(
            s[0].transport,
            Transport::Stdio {
                command: "npx".into(),
                args: vec!["-y".into(), "gh".into()],
                env: [("T".to_string(), "${GH_TOKEN}".to_string())].into(),
                cwd: None
            }
        );
        assert!(
            matches!(&s[1].transport, Transport::Remote { sse: false, headers, .. } if headers["A"] == "${K}")
        );

        let zed = "{\n  // Zed\n  \"context_servers\": {\"old\": {\"command\": {\"path\": \"srv\", \"args\": [\"-v\"], \"env\": {}}, \"settings\": {}},\n  \"new\": {\"command\": \"srv2\", \"args\": []}, \"ext\": {\"settings\": {\"k\": 1}},},\n}";
        let s = servers(
            &loc(Client::Zed, Shape::ZedContextServers, &["context_servers"]),
            zed,
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert!(
            matches!(&s[1].transport, Transport::Stdio { command, args, .. } if command == "srv" && args == &["-v"])
        );

        let vscode = r#"{"inputs": [{"id": "key", "type": "promptString"}], "servers": {"a": {"type": "stdio", "command": "x", "env": {"K": "${input:key}"}}}}"#;
        let s = servers(
            &loc(Client::Vscode, Shape::VscodeServers, &["servers"]),
            vscode,
        )
        .unwrap();
        assert!(s[0].problem.as_deref().unwrap().contains("${input:key}"));

        let gemini = r#"{"mcpServers": {"a": {"url": "http://h/sse", "timeout": 30001}, "b": {"httpUrl": "http://h/mcp"}}}"#;
        let s = servers(
            &loc(Client::Gemini, Shape::McpServers, &["mcpServers"]),
            gemini,
        )
        .unwrap();
        assert!(matches!(
            s[0].transport,
            Transport::Remote { sse: true, .. }
        ));
        assert_eq!(s[0].request_timeout_secs, Some(31));
        assert!(matches!(
            s[1].transport,
            Transport::Remote { sse: false, .. }
        ));

        let cline = r#"{"mcpServers": {"a": {"command": "x", "disabled": true, "timeout": 60, "autoApprove": []}}}"#;
        let s = servers(
            &loc(Client::Cline, Shape::McpServers, &["mcpServers"]),
            cline,
        )
        .unwrap();
        assert!(s[0].disabled);
        assert_eq!(s[0].request_timeout_secs, Some(60));

        let windsurf = r#"{"mcpServers": {"r": {"serverUrl": "https://h/mcp"}}}"#;
        let s = servers(
            &loc(Client::Windsurf, Shape::McpServers, &["mcpServers"]),
            windsurf,
        )
        .unwrap();
        assert!(matches!(&s[0].transport, Transport::Remote { url, .. } if url == "https://h/mcp"));
    }

    #[test]
    fn claude_code_projects_with_servers_are_found() {
        let text = r#"{"mcpServers": {}, "projects": {"/a": {"mcpServers": {"x": {"command": "y"}}}, "/b": {"mcpServers": {}}, "/c": {"history": []}}}"#;
        assert_eq!(claude_projects(text), ["/a"]);
        let l = loc(
            Client::ClaudeCode,
            Shape::McpServers,
            &["projects", "/a", "mcpServers"],
        );
        assert_eq!(servers(&l, text).unwrap()[0].name, "x");
    }

    #[test]
    fn invalid_json_says_where() {
        let e = parse("{\n\"a\": }").unwrap_err();
        assert!(e.starts_with("invalid JSON at line 2"), "{e}");
        assert!(parse("[1]").unwrap_err().contains("one JSON object"));
    }
}
