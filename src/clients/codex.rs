//! Codex CLI's `config.toml`: its `[mcp_servers.NAME]` tables read into
//! [`ClientServer`], and the splices `connect` and `disconnect` make.
//! Only servers written as their own tables are edited; one written
//! inline or with dotted keys elsewhere is reported and left alone.

use super::toml::{self, Value};
use super::{ClientServer, Transport};
use std::collections::BTreeMap;
use std::ops::Range;

pub const TABLE: &str = "mcp_servers";

/// One server as the file holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    /// Its keys merged from every place that sets them.
    pub table: Vec<(String, Value)>,
    /// The ranges of its `[mcp_servers.NAME...]` sections, in file order.
    pub sections: Vec<Range<usize>>,
    /// Set outside its own sections (inline, or dotted keys): not
    /// editable by splicing sections.
    pub scattered: bool,
    /// In its main section: the `command` and `args` pairs (line range,
    /// value range).
    pub command: Option<(Range<usize>, Range<usize>)>,
    pub args: Option<(Range<usize>, Range<usize>)>,
}

/// Every server of the file, in file order.
pub fn entries(text: &str) -> Result<Vec<Entry>, String> {
    let doc = toml::parse(text)?;
    let mut out: Vec<Entry> = Vec::new();
    let get = |out: &mut Vec<Entry>, name: &str| -> usize {
        match out.iter().position(|e| e.name == name) {
            Some(i) => i,
            None => {
                out.push(Entry {
                    name: name.to_string(),
                    table: Vec::new(),
                    sections: Vec::new(),
                    scattered: false,
                    command: None,
                    args: None,
                });
                out.len() - 1
            }
        }
    };
    for s in &doc.sections {
        let head: Vec<String> = match &s.header {
            Some(h) if h.array => continue,
            Some(h) => h.path.clone(),
            None => Vec::new(),
        };
        let own = head.len() >= 2 && head[0] == TABLE;
        if own {
            let i = get(&mut out, &head[1]);
            out[i].sections.push(s.span.clone());
        }
        for p in &s.pairs {
            let full: Vec<String> = head.iter().chain(&p.keys).cloned().collect();
            if full.len() < 2 || full[0] != TABLE {
                continue;
            }
            let i = get(&mut out, &full[1]);
            let e = &mut out[i];
            if !own {
                e.scattered = true;
            }
            match &full[2..] {
                [] => {
                    if let Value::Table(pairs) = &p.value {
                        for (k, v) in pairs {
                            toml::insert_dotted(&mut e.table, std::slice::from_ref(k), v.clone());
                        }
                    }
                }
                rest => {
                    toml::insert_dotted(&mut e.table, rest, p.value.clone());
                    if own && head.len() == 2 && p.keys.len() == 1 {
                        let at = Some((p.span.clone(), p.value_span.clone()));
                        match p.keys[0].as_str() {
                            "command" => e.command = at,
                            "args" => e.args = at,
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

fn get<'a>(table: &'a [(String, Value)], k: &str) -> Option<&'a Value> {
    table.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

fn map(v: Option<&Value>) -> BTreeMap<String, String> {
    match v {
        Some(Value::Table(pairs)) => pairs
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn secs(v: Option<&Value>, per_sec: f64) -> Option<u64> {
    let n = match v? {
        Value::Int(n) => *n as f64,
        Value::Float(f) => *f,
        _ => return None,
    };
    (n > 0.0).then(|| (n / per_sec).ceil() as u64)
}

/// The file's servers as [`ClientServer`]s.
pub fn servers(text: &str) -> Result<Vec<ClientServer>, String> {
    Ok(entries(text)?.iter().filter_map(server).collect())
}

fn server(e: &Entry) -> Option<ClientServer> {
    let t = &e.table;
    let transport = if let Some(command) = get(t, "command").and_then(Value::as_str) {
        let mut env = map(get(t, "env"));
        // `env_vars` forwards variables by name: a reference, never a value.
        for name in strings(get(t, "env_vars")) {
            env.entry(name.clone()).or_insert(format!("${{{name}}}"));
        }
        Transport::Stdio {
            command: command.to_string(),
            args: strings(get(t, "args")),
            env,
            cwd: get(t, "cwd").and_then(Value::as_str).map(String::from),
        }
    } else if let Some(url) = get(t, "url").and_then(Value::as_str) {
        let mut headers = map(get(t, "http_headers"));
        for (h, var) in map(get(t, "env_http_headers")) {
            headers.insert(h, format!("${{{var}}}"));
        }
        if let Some(var) = get(t, "bearer_token_env_var").and_then(Value::as_str) {
            headers.insert("Authorization".into(), format!("Bearer ${{{var}}}"));
        }
        Transport::Remote {
            sse: false,
            url: url.to_string(),
            headers,
        }
    } else {
        return None;
    };
    Some(ClientServer {
        name: e.name.clone(),
        transport,
        disabled: get(t, "enabled") == Some(&Value::Bool(false)),
        start_timeout_secs: secs(get(t, "startup_timeout_sec"), 1.0)
            .or_else(|| secs(get(t, "startup_timeout_ms"), 1000.0)),
        request_timeout_secs: secs(get(t, "tool_timeout_sec"), 1.0),
        problem: None,
    })
}

/// The section text of a new server table: command, args and (when any)
/// env as an inline table.
pub fn section(name: &str, command: &str, args: &[String], env: &[(String, String)]) -> String {
    let args = Value::Array(args.iter().map(|a| Value::Str(a.clone())).collect());
    let mut out = format!(
        "[{TABLE}.{}]\ncommand = {}\nargs = {}\n",
        toml::key(name),
        toml::string(command),
        toml::render(&args)
    );
    if !env.is_empty() {
        let vars: Vec<String> = env
            .iter()
            .map(|(k, v)| format!("{} = {}", toml::key(k), toml::string(v)))
            .collect();
        out.push_str(&format!("env = {{ {} }}\n", vars.join(", ")));
    }
    out
}

/// `text` with `section` appended after a blank line.
pub fn append(text: &str, section: &str) -> String {
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str(section.trim_end_matches('\n'));
    out.push('\n');
    out
}

/// Remove `ranges` (non-overlapping) from `text`.
pub fn cut(text: &str, ranges: &[Range<usize>]) -> String {
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for r in sorted {
        out.push_str(&text[at..r.start.max(at)]);
        at = at.max(r.end);
    }
    out.push_str(&text[at..]);
    // A cut at the end leaves no blank lines behind.
    if at == text.len() && out.ends_with("\n\n") {
        out.truncate(out.trim_end_matches('\n').len() + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"model = "o3"

[mcp_servers.docs]
command = "npx"
args = ["-y", "@x/docs"]
env_vars = ["DOCS_TOKEN"]
startup_timeout_ms = 2500
tool_timeout_sec = 30
enabled = false

[mcp_servers.docs.env]
MODE = "fast"

[profiles.x]
model = "y"

[mcp_servers.remote]
url = "https://h/mcp"
bearer_token_env_var = "TOK"

[mcp_servers]
inline = { command = "srv" }
"#;

    #[test]
    fn servers_read_with_every_field_we_carry() {
        let s = servers(FILE).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[0].transport,
            Transport::Stdio {
                command: "npx".into(),
                args: vec!["-y".into(), "@x/docs".into()],
                env: [
                    ("DOCS_TOKEN".to_string(), "${DOCS_TOKEN}".to_string()),
                    ("MODE".to_string(), "fast".to_string())
                ]
                .into(),
                cwd: None
            }
        );
        assert!(s[0].disabled);
        assert_eq!(
            (s[0].start_timeout_secs, s[0].request_timeout_secs),
            (Some(3), Some(30))
        );
        assert!(
            matches!(&s[1].transport, Transport::Remote { headers, .. } if headers["Authorization"] == "Bearer ${TOK}")
        );
        let e = entries(FILE).unwrap();
        assert_eq!(e[0].sections.len(), 2);
        assert!(!e[0].scattered && e[2].scattered);
        let (_, v) = e[0].args.clone().unwrap();
        assert_eq!(&FILE[v], "[\"-y\", \"@x/docs\"]");
    }

    #[test]
    fn sections_cut_and_append() {
        let e = entries(FILE).unwrap();
        let out = cut(FILE, &e[0].sections);
        assert!(out.starts_with("model = \"o3\"\n\n[profiles.x]"), "{out}");
        let out = append(
            &out,
            &section("mcpshare", "/bin/mcpshare", &["mcp".into()], &[]),
        );
        assert!(out.ends_with("inline = { command = \"srv\" }\n\n[mcp_servers.mcpshare]\ncommand = \"/bin/mcpshare\"\nargs = [\"mcp\"]\n"));
        assert_eq!(servers(&out).unwrap().len(), 3);
    }
}
