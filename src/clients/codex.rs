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
    /// Where its `env` is written in its own sections, if it is.
    pub env: Option<Env>,
}

/// How a server's `env` is written.
#[derive(Debug, Clone, PartialEq)]
pub enum Env {
    /// `env = { ... }` in its main section: the pair's line range and the
    /// value's range.
    Inline {
        line: Range<usize>,
        value: Range<usize>,
    },
    /// Lines of their own: its `[mcp_servers.NAME.env]` table (`prefix`
    /// empty) or `env.KEY = ...` in its main section (`prefix` `env.`).
    /// Each key with its line range and value, and where a new line goes.
    Lines {
        prefix: &'static str,
        vars: Vec<(String, Range<usize>, Value)>,
        end: usize,
    },
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
                    env: None,
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
            if head.len() == 3 && head[2] == "env" {
                // New keys go after its last pair, or its header's line.
                let header = text[s.span.clone()]
                    .find('\n')
                    .map_or(s.span.end, |n| s.span.start + n + 1);
                out[i].env = Some(Env::Lines {
                    prefix: "",
                    vars: Vec::new(),
                    end: header,
                });
            }
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
                            "env" if matches!(p.value, Value::Table(_)) => {
                                e.env = Some(Env::Inline {
                                    line: p.span.clone(),
                                    value: p.value_span.clone(),
                                })
                            }
                            _ => {}
                        }
                    }
                    // `KEY = ...` of its env table, or `env.KEY = ...`.
                    let var = match (head.len(), p.keys.as_slice()) {
                        (3, [k]) if head[2] == "env" => Some(("", k)),
                        (2, [env, k]) if env == "env" => Some(("env.", k)),
                        _ => None,
                    };
                    if let Some((prefix, k)) = var.filter(|_| own) {
                        if !matches!(e.env, Some(Env::Lines { .. })) {
                            e.env = Some(Env::Lines {
                                prefix,
                                vars: Vec::new(),
                                end: p.span.end,
                            });
                        }
                        if let Some(Env::Lines { vars, end, .. }) = &mut e.env {
                            vars.push((k.clone(), p.span.clone(), p.value.clone()));
                            *end = p.span.end;
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

/// Does the server set variable `k`, in its env or by name in `env_vars`?
pub fn sets_env(e: &Entry, k: &str) -> bool {
    env_value(e, k).is_some() || strings(get(&e.table, "env_vars")).iter().any(|n| n == k)
}

/// Does the server have an env, of any kind, anywhere?
pub fn has_env(e: &Entry) -> bool {
    get(&e.table, "env").is_some()
}

/// The value of variable `k` in the server's env.
pub fn env_value<'a>(e: &'a Entry, k: &str) -> Option<&'a Value> {
    match get(&e.table, "env") {
        Some(Value::Table(pairs)) => get(pairs, k),
        _ => None,
    }
}

/// `vars` as one line each: `PREFIXKEY = "value"`.
pub fn env_lines(prefix: &str, vars: &[(String, String)]) -> String {
    vars.iter()
        .map(|(k, v)| format!("{prefix}{} = {}\n", toml::key(k), toml::string(v)))
        .collect()
}

/// The inline table `table` (its text) with `vars` added after its last
/// member: what [`inline_without`] takes out again, byte for byte.
pub fn inline_with(table: &str, vars: &[(String, String)]) -> Result<String, String> {
    let members = toml::inline_members(table, 0)?;
    let (at, mut sep) = match members.last() {
        Some(m) => (m.span.end, ", "),
        None => (1, " "),
    };
    let mut add = String::new();
    for (k, v) in vars {
        add.push_str(&format!("{sep}{} = {}", toml::key(k), toml::string(v)));
        sep = ", ";
    }
    let mut out = table.to_string();
    out.insert_str(at, &add);
    Ok(out)
}

/// The inline table `table` (its text) without its members `names`; the
/// others keep their bytes.
pub fn inline_without(table: &str, names: &[&str]) -> Result<String, String> {
    let mut out = table.to_string();
    for name in names {
        let members = toml::inline_members(&out, 0)?;
        let Some(i) = members.iter().position(|m| m.keys == [*name]) else {
            continue;
        };
        let cut = match (i.checked_sub(1), members.get(i + 1)) {
            (Some(before), _) => members[before].span.end..members[i].span.end,
            (None, Some(next)) => members[i].span.start..next.span.start,
            (None, None) => 1..members[i].span.end,
        };
        out.replace_range(cut, "");
    }
    Ok(out)
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
    fn inline_env_members_are_added_and_taken_out_byte_for_byte() {
        let vars = [
            ("A".to_string(), "x".to_string()),
            ("B b".into(), "y".into()),
        ];
        for table in [
            "{}",
            "{ }",
            "{ K = \"v\" }",
            "{ K = 1, L = [2] }",
            "{\n  K = \"v\", # c\n}",
        ] {
            let with = inline_with(table, &vars).unwrap();
            let read = toml::parse(&format!("x = {with}\n")).unwrap();
            let toml::Value::Table(pairs) = &read.sections[0].pairs[0].value else {
                panic!("{with}");
            };
            assert!(
                pairs.ends_with(&[
                    ("A".into(), Value::Str("x".into())),
                    ("B b".into(), Value::Str("y".into()))
                ]),
                "{with}"
            );
            assert_eq!(inline_without(&with, &["A", "B b"]).unwrap(), table);
            assert_eq!(inline_without(&with, &["B b", "A"]).unwrap(), table);
        }
        assert_eq!(
            inline_with("{ K = 1 }", &vars[..1]).unwrap(),
            "{ K = 1, A = \"x\" }"
        );
        assert_eq!(
            inline_without("{ A = 1, K = 2 }", &["A"]).unwrap(),
            "{ K = 2 }"
        );
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
