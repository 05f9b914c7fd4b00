//! Format-preserving edits of the config file. A small JSON scanner finds
//! the byte range of each member of an object, and an edit splices new bytes
//! into the original text: every entry it does not touch keeps its exact
//! bytes, order and unknown keys. It never parses the file into a tree and
//! prints the tree back (that would reorder and reformat what users wrote).
//! The scanner runs only on text serde_json has accepted.

use serde_json::Value;
use std::ops::Range;

/// One `"key": value` of an object, by byte offsets into the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub key: String,
    pub key_start: usize,
    pub key_end: usize,
    pub value: Range<usize>,
}

/// A value to write: an object whose keys keep the order given, or any
/// JSON value (whose objects print in serde_json's key order).
#[derive(Debug, Clone, PartialEq)]
pub enum New {
    Object(Vec<(String, New)>),
    Value(Value),
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

fn bad(i: usize, what: &str) -> String {
    format!("unexpected JSON at byte {i}: {what}")
}

/// `i` is at an opening quote; the offset after the closing one.
fn scan_string(b: &[u8], i: usize) -> Result<usize, String> {
    if b.get(i) != Some(&b'"') {
        return Err(bad(i, "expected a string"));
    }
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Ok(j + 1),
            _ => j += 1,
        }
    }
    Err(bad(i, "unterminated string"))
}

/// `i` is at the first byte of a value; the offset after its last byte.
fn scan_value(b: &[u8], i: usize) -> Result<usize, String> {
    match b.get(i) {
        None => Err(bad(i, "expected a value")),
        Some(b'"') => scan_string(b, i),
        Some(&open @ (b'{' | b'[')) => {
            let close = if open == b'{' { b'}' } else { b']' };
            let mut j = skip_ws(b, i + 1);
            if b.get(j) == Some(&close) {
                return Ok(j + 1);
            }
            loop {
                if open == b'{' {
                    j = scan_string(b, j)?;
                    j = skip_ws(b, j);
                    if b.get(j) != Some(&b':') {
                        return Err(bad(j, "expected ':'"));
                    }
                    j = skip_ws(b, j + 1);
                }
                j = skip_ws(b, scan_value(b, j)?);
                match b.get(j) {
                    Some(b',') => j = skip_ws(b, j + 1),
                    Some(&c) if c == close => return Ok(j + 1),
                    _ => return Err(bad(j, "expected ',' or a closing bracket")),
                }
            }
        }
        Some(_) => {
            let mut j = i;
            while j < b.len() && !is_ws(b[j]) && !matches!(b[j], b',' | b'}' | b']') {
                j += 1;
            }
            if j == i {
                return Err(bad(i, "expected a value"));
            }
            Ok(j)
        }
    }
}

/// The byte range of the top-level object; None for an empty (or
/// whitespace-only) text.
pub fn root(text: &str) -> Result<Option<Range<usize>>, String> {
    let b = text.as_bytes();
    let start = skip_ws(b, 0);
    if start == b.len() {
        return Ok(None);
    }
    if b[start] != b'{' {
        return Err(bad(start, "the file must hold one JSON object"));
    }
    let end = scan_value(b, start)?;
    if skip_ws(b, end) != b.len() {
        return Err(bad(end, "text after the top-level object"));
    }
    Ok(Some(start..end))
}

/// The members of the object at `obj` (the range of its braces), in order.
pub fn members(text: &str, obj: Range<usize>) -> Result<Vec<Member>, String> {
    let b = text.as_bytes();
    if b.get(obj.start) != Some(&b'{') {
        return Err(bad(obj.start, "expected an object"));
    }
    let mut out = Vec::new();
    let mut i = skip_ws(b, obj.start + 1);
    if b.get(i) == Some(&b'}') {
        return Ok(out);
    }
    loop {
        let key_start = i;
        let key_end = scan_string(b, i)?;
        let key: String = serde_json::from_str(&text[key_start..key_end])
            .map_err(|e| bad(key_start, &e.to_string()))?;
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return Err(bad(i, "expected ':'"));
        }
        let vstart = skip_ws(b, i + 1);
        let vend = scan_value(b, vstart)?;
        out.push(Member {
            key,
            key_start,
            key_end,
            value: vstart..vend,
        });
        i = skip_ws(b, vend);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return Ok(out),
            _ => return Err(bad(i, "expected ',' or '}'")),
        }
    }
}

/// The member `key` of the object at `obj` (the last one if repeated, as
/// serde_json reads it).
pub fn member(text: &str, obj: Range<usize>, key: &str) -> Result<Option<Member>, String> {
    Ok(members(text, obj)?.into_iter().rev().find(|m| m.key == key))
}

/// The range of `mcpServers`' object, if the file has one.
pub fn servers(text: &str) -> Result<Option<Range<usize>>, String> {
    let Some(root) = root(text)? else {
        return Ok(None);
    };
    match member(text, root, "mcpServers")? {
        Some(m) if text.as_bytes()[m.value.start] == b'{' => Ok(Some(m.value)),
        Some(m) => Err(bad(m.value.start, "\"mcpServers\" must be an object")),
        None => Ok(None),
    }
}

/// 1-based line and column (in characters) of byte `offset`.
pub fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// How the file is laid out, so new text looks like its neighbours.
struct Style {
    newline: &'static str,
    /// One level of indentation (two spaces when the file shows none).
    unit: String,
}

impl Style {
    fn of(text: &str) -> Style {
        let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
        let unit = text
            .lines()
            .map(|l| {
                let n = l.len() - l.trim_start_matches([' ', '\t']).len();
                &l[..n]
            })
            .find(|indent| !indent.is_empty() && indent.len() < 9)
            .unwrap_or("  ")
            .to_string();
        Style { newline, unit }
    }
}

/// The indentation of the line holding byte `offset`.
fn line_indent(text: &str, offset: usize) -> &str {
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[start..];
    &line[..line.len() - line.trim_start_matches([' ', '\t']).len()]
}

fn key_text(key: &str) -> String {
    Value::String(key.to_string()).to_string()
}

fn render(v: &New, style: &Style, indent: &str, pretty: bool) -> String {
    match v {
        New::Value(v) if !pretty => v.to_string(),
        New::Value(v) => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(style.unit.as_bytes());
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(v, &mut ser).expect("a Value always serializes");
            let s = String::from_utf8(buf).expect("serde_json writes UTF-8");
            s.replace('\n', &format!("{}{indent}", style.newline))
        }
        New::Object(pairs) if pairs.is_empty() => "{}".to_string(),
        New::Object(pairs) if !pretty => {
            let inner: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}:{}", key_text(k), render(v, style, indent, false)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        New::Object(pairs) => {
            let inner_indent = format!("{indent}{}", style.unit);
            let inner: Vec<String> = pairs
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}{inner_indent}{}: {}",
                        style.newline,
                        key_text(k),
                        render(v, style, &inner_indent, true)
                    )
                })
                .collect();
            format!("{{{}{}{indent}}}", inner.join(","), style.newline)
        }
    }
}

fn splice(text: &str, range: Range<usize>, with: &str) -> String {
    let mut out = String::with_capacity(text.len() + with.len());
    out.push_str(&text[..range.start]);
    out.push_str(with);
    out.push_str(&text[range.end..]);
    out
}

/// Set member `key` of the object at `obj` to `value`: replace its value
/// in place when present, else append it after the last member (or into
/// the empty object), laid out like the members around it.
pub fn set_member(text: &str, obj: Range<usize>, key: &str, value: &New) -> Result<String, String> {
    let style = Style::of(text);
    let ms = members(text, obj.clone())?;
    if let Some(m) = ms.iter().rev().find(|m| m.key == key) {
        let pretty = text[m.value.clone()].contains('\n') || multiline_object(text, obj, &ms);
        let indent = line_indent(text, m.key_start).to_string();
        let new = render(value, &style, &indent, pretty);
        return Ok(splice(text, m.value.clone(), &new));
    }
    match ms.last() {
        Some(last) => {
            let first = &ms[0];
            let lead = &text[obj.start + 1..first.key_start];
            let colon = &text[first.key_end..first.value.start];
            let pretty = lead.contains('\n');
            let indent = if pretty {
                line_indent(text, last.key_start).to_string()
            } else {
                String::new()
            };
            let sep = if pretty {
                format!(",{}{indent}", style.newline)
            } else if ms.len() >= 2 {
                text[ms[0].value.end..ms[1].key_start].to_string()
            } else if colon.contains(' ') {
                format!(", {lead}")
            } else {
                format!(",{lead}")
            };
            let new = format!(
                "{sep}{}{colon}{}",
                key_text(key),
                render(value, &style, &indent, pretty)
            );
            Ok(splice(text, last.value.end..last.value.end, &new))
        }
        None => {
            let pretty = text.contains('\n');
            let inner = obj.start + 1..obj.end - 1;
            let new = if pretty {
                let outer = line_indent(text, obj.start).to_string();
                let indent = format!("{outer}{}", style.unit);
                format!(
                    "{}{indent}{}: {}{}{outer}",
                    style.newline,
                    key_text(key),
                    render(value, &style, &indent, true),
                    style.newline
                )
            } else {
                format!("{}:{}", key_text(key), render(value, &style, "", false))
            };
            Ok(splice(text, inner, &new))
        }
    }
}

/// Is the object laid out over several lines (its first member on a line
/// of its own)?
fn multiline_object(text: &str, obj: Range<usize>, ms: &[Member]) -> bool {
    match ms.first() {
        Some(first) => text[obj.start + 1..first.key_start].contains('\n'),
        None => false,
    }
}

/// Remove member `key` of the object at `obj` with its comma; the other
/// members keep their bytes. None when there is no such member.
pub fn remove_member(text: &str, obj: Range<usize>, key: &str) -> Result<Option<String>, String> {
    let ms = members(text, obj.clone())?;
    let Some(idx) = ms.iter().rposition(|m| m.key == key) else {
        return Ok(None);
    };
    let range = if ms.len() == 1 {
        obj.start + 1..obj.end - 1
    } else if idx > 0 {
        ms[idx - 1].value.end..ms[idx].value.end
    } else {
        ms[0].key_start..ms[1].key_start
    };
    Ok(Some(splice(text, range, "")))
}

/// Add or replace server `name` in `mcpServers`, creating the file's
/// object and `mcpServers` as needed.
pub fn put_server(text: &str, name: &str, entry: &New) -> Result<String, String> {
    let Some(root) = root(text)? else {
        let style = Style::of(text);
        let servers = New::Object(vec![(name.to_string(), entry.clone())]);
        let doc = New::Object(vec![("mcpServers".to_string(), servers)]);
        return Ok(format!(
            "{}{}",
            render(&doc, &style, "", true),
            style.newline
        ));
    };
    match servers(text)? {
        Some(obj) => set_member(text, obj, name, entry),
        None => set_member(
            text,
            root,
            "mcpServers",
            &New::Object(vec![(name.to_string(), entry.clone())]),
        ),
    }
}

/// Remove server `name`; None when it is not in the file.
pub fn remove_server(text: &str, name: &str) -> Result<Option<String>, String> {
    match servers(text)? {
        Some(obj) => remove_member(text, obj, name),
        None => Ok(None),
    }
}

/// Set `mcpshare.enabled` of server `name`, touching nothing else of its
/// entry; None when the server is not in the file.
pub fn set_enabled(text: &str, name: &str, enabled: bool) -> Result<Option<String>, String> {
    let Some(obj) = servers(text)? else {
        return Ok(None);
    };
    let Some(entry) = member(text, obj, name)? else {
        return Ok(None);
    };
    if text.as_bytes()[entry.value.start] != b'{' {
        return Err(bad(entry.value.start, "a server entry must be an object"));
    }
    let value = New::Value(Value::Bool(enabled));
    let out = match member(text, entry.value.clone(), "mcpshare")? {
        Some(ours) if text.as_bytes()[ours.value.start] == b'{' => {
            set_member(text, ours.value, "enabled", &value)?
        }
        Some(ours) => return Err(bad(ours.value.start, "\"mcpshare\" must be an object")),
        None => set_member(
            text,
            entry.value,
            "mcpshare",
            &New::Object(vec![("enabled".to_string(), value)]),
        )?,
    };
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(text: &str, obj: Range<usize>) -> Vec<String> {
        members(text, obj)
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect()
    }

    fn entry() -> New {
        New::Object(vec![
            ("command".into(), New::Value(json!("node"))),
            ("args".into(), New::Value(json!(["s.js"]))),
        ])
    }

    fn parses(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn scanner_skips_braces_quotes_and_escapes_inside_strings() {
        let text =
            r#"{"mcpServers": {"a": {"args": ["}{", "\"]\\", "\\\"{"], "x": "é ☃ 🦀"}, "b": {}}}"#;
        let obj = servers(text).unwrap().unwrap();
        assert_eq!(keys(text, obj.clone()), ["a", "b"]);
        let ms = members(text, obj).unwrap();
        assert_eq!(&text[ms[1].value.clone()], "{}");
        assert_eq!(
            parses(&text[ms[0].value.clone()])["args"],
            json!(["}{", "\"]\\", "\\\"{"])
        );
    }

    #[test]
    fn scanner_reads_escaped_keys_numbers_and_literals() {
        let text = "{\"a\\u0062\" : -1.5e3 ,\"t\":true,\"n\":null , \"s\":[1,[2,{}]]}";
        let ms = members(text, root(text).unwrap().unwrap()).unwrap();
        let got: Vec<(&str, &str)> = ms
            .iter()
            .map(|m| (m.key.as_str(), &text[m.value.clone()]))
            .collect();
        assert_eq!(
            got,
            [
                ("ab", "-1.5e3"),
                ("t", "true"),
                ("n", "null"),
                ("s", "[1,[2,{}]]")
            ]
        );
    }

    #[test]
    fn empty_and_missing_objects() {
        assert_eq!(root("  \n").unwrap(), None);
        assert_eq!(servers("{}").unwrap(), None);
        assert_eq!(servers("{\"mcpServers\": {}}").unwrap(), Some(15..17));
        assert!(servers("{\"mcpServers\": []}").is_err());
        assert!(root("[1]").is_err());
        assert!(root("{} x").is_err());
    }

    #[test]
    fn adding_to_an_empty_text_makes_a_two_space_file() {
        let out = put_server("", "fs", &entry()).unwrap();
        assert_eq!(
            out,
            "{\n  \"mcpServers\": {\n    \"fs\": {\n      \"command\": \"node\",\n      \"args\": [\n        \"s.js\"\n      ]\n    }\n  }\n}\n"
        );
    }

    #[test]
    fn adding_follows_the_neighbours_indentation_and_keeps_their_bytes() {
        let text = "{\n    \"other\": 1,\n    \"mcpServers\": {\n        \"a\": {\"command\":\"x\",  \"zz\": [1]}\n    }\n}\n";
        let out = put_server(text, "b", &entry()).unwrap();
        assert!(out.contains("\"a\": {\"command\":\"x\",  \"zz\": [1]},\n        \"b\": {\n            \"command\": \"node\""), "{out}");
        assert!(out.starts_with("{\n    \"other\": 1,\n"));
        assert_eq!(parses(&out)["mcpServers"]["b"]["args"], json!(["s.js"]));
    }

    #[test]
    fn adding_to_a_compact_file_stays_compact() {
        let text = r#"{"mcpServers":{"a":{"command":"x"}}}"#;
        let out = put_server(text, "b", &entry()).unwrap();
        assert_eq!(
            out,
            r#"{"mcpServers":{"a":{"command":"x"},"b":{"command":"node","args":["s.js"]}}}"#
        );
    }

    #[test]
    fn adding_without_mcp_servers_creates_it_and_keeps_other_keys() {
        let text = "{\n  \"theme\": \"dark\"\n}\n";
        let out = put_server(text, "a", &entry()).unwrap();
        let v = parses(&out);
        assert_eq!(v["theme"], "dark");
        assert_eq!(v["mcpServers"]["a"]["command"], "node");
        assert!(out.starts_with("{\n  \"theme\": \"dark\",\n  \"mcpServers\": {\n    \"a\": {"));
    }

    #[test]
    fn adding_into_an_empty_mcp_servers() {
        let text = "{\n  \"mcpServers\": {}\n}\n";
        let out = put_server(text, "a", &entry()).unwrap();
        assert!(
            out.starts_with("{\n  \"mcpServers\": {\n    \"a\": {\n      \"command\""),
            "{out}"
        );
        assert!(out.ends_with("    }\n  }\n}\n"), "{out}");
    }

    #[test]
    fn crlf_files_get_crlf_lines() {
        let text = "{\r\n  \"mcpServers\": {\r\n    \"a\": {\"command\": \"x\"}\r\n  }\r\n}\r\n";
        let out = put_server(text, "b", &entry()).unwrap();
        assert!(!out.replace("\r\n", "").contains('\n'), "{out:?}");
        assert_eq!(parses(&out)["mcpServers"]["b"]["command"], "node");
        let back = remove_server(&out, "b").unwrap().unwrap();
        assert_eq!(back, text);
    }

    #[test]
    fn replacing_an_entry_leaves_the_others_alone() {
        let text = "{\"mcpServers\": {\n  \"a\": {\"command\": \"x\"},\n  \"b\": {\"command\": \"y\", \"keep\": 1},\n  \"c\": {\"command\": \"z\"}\n}}";
        let out = put_server(text, "b", &entry()).unwrap();
        assert!(out.starts_with("{\"mcpServers\": {\n  \"a\": {\"command\": \"x\"},\n  \"b\": {"));
        assert!(
            out.ends_with("},\n  \"c\": {\"command\": \"z\"}\n}}"),
            "{out}"
        );
        assert_eq!(keys(&out, servers(&out).unwrap().unwrap()), ["a", "b", "c"]);
        assert_eq!(parses(&out)["mcpServers"]["b"].get("keep"), None);
    }

    #[test]
    fn removing_first_middle_last_and_only_entries() {
        let text = "{\"mcpServers\": {\n  \"a\": {\"command\": \"x\"},\n  \"b\": {\"command\": \"y\"},\n  \"c\": {\"command\": \"z\"}\n}}";
        let first = remove_server(text, "a").unwrap().unwrap();
        assert_eq!(
            first,
            "{\"mcpServers\": {\n  \"b\": {\"command\": \"y\"},\n  \"c\": {\"command\": \"z\"}\n}}"
        );
        let middle = remove_server(text, "b").unwrap().unwrap();
        assert_eq!(
            middle,
            "{\"mcpServers\": {\n  \"a\": {\"command\": \"x\"},\n  \"c\": {\"command\": \"z\"}\n}}"
        );
        let last = remove_server(text, "c").unwrap().unwrap();
        assert_eq!(
            last,
            "{\"mcpServers\": {\n  \"a\": {\"command\": \"x\"},\n  \"b\": {\"command\": \"y\"}\n}}"
        );
        let only = remove_server("{\"mcpServers\": { \"a\": 1 }, \"z\": 2}", "a")
            .unwrap()
            .unwrap();
        assert_eq!(only, "{\"mcpServers\": {}, \"z\": 2}");
        assert_eq!(remove_server(text, "nope").unwrap(), None);
        assert_eq!(remove_server("{}", "a").unwrap(), None);
    }

    #[test]
    fn enabling_touches_only_the_flag() {
        let text = "{\"mcpServers\": {\n  \"a\": {\"command\": \"x\", \"mcpshare\": {\"lazy\": false}},\n  \"b\": {\"command\": \"y\"}\n}}";
        let out = set_enabled(text, "a", false).unwrap().unwrap();
        assert!(
            out.contains("\"mcpshare\": {\"lazy\": false, \"enabled\": false}"),
            "{out}"
        );
        let again = set_enabled(&out, "a", true).unwrap().unwrap();
        assert!(again.contains("\"enabled\": true}"), "{again}");
        let b = set_enabled(text, "b", false).unwrap().unwrap();
        assert!(
            b.contains("\"b\": {\"command\": \"y\", \"mcpshare\": {\"enabled\":false}}"),
            "{b}"
        );
        assert_eq!(
            parses(&b)["mcpServers"]["a"],
            parses(text)["mcpServers"]["a"]
        );
        assert_eq!(set_enabled(text, "zz", true).unwrap(), None);
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let text = "{\n  \"é\": x";
        assert_eq!(position(text, 0), (1, 1));
        assert_eq!(position(text, text.find('x').unwrap()), (2, 8));
    }
}
