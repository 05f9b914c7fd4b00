//! The subset of TOML that Codex CLI's `config.toml` uses, read with the
//! byte range of every table and key, so an edit splices text into the
//! file and leaves every other byte (comments, other tables, order) as it
//! was. Reads strings (all four kinds), integers, floats, booleans,
//! arrays, inline tables, dotted and quoted keys and `[[array]]` headers;
//! dates are kept as their text. It never prints a whole document.

use std::ops::Range;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Array(Vec<Value>),
    /// An inline table, keys in file order.
    Table(Vec<(String, Value)>),
    /// A date or time, as written.
    Other(String),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// `[a.b]` or `[[a.b]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub path: Vec<String>,
    pub array: bool,
}

/// `key = value` with the range of its line(s) and of its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub keys: Vec<String>,
    pub value: Value,
    /// From the first byte of the key to the end of the line, newline
    /// included.
    pub span: Range<usize>,
    pub value_span: Range<usize>,
}

/// A header and the pairs under it; the root section has no header.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub header: Option<Header>,
    /// From the start of the header line to the start of the next header
    /// line (or the end of the file).
    pub span: Range<usize>,
    pub pairs: Vec<Pair>,
}

/// `key = value` inside an inline table: the range from the key's first
/// byte to the value's last.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub keys: Vec<String>,
    pub value: Value,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    pub sections: Vec<Section>,
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

/// Parse `text`; the error names the line and what was wrong.
pub fn parse(text: &str) -> Result<Doc, String> {
    let mut p = Parser {
        s: text,
        b: text.as_bytes(),
        i: 0,
    };
    let mut sections = vec![Section {
        header: None,
        span: 0..0,
        pairs: Vec::new(),
    }];
    loop {
        p.skip_blank_lines();
        if p.i >= p.b.len() {
            break;
        }
        let line_start = p.line_start(p.i);
        if p.b[p.i] == b'[' {
            let array = p.b.get(p.i + 1) == Some(&b'[');
            p.i += if array { 2 } else { 1 };
            p.skip_ws();
            let path = p.keys()?;
            p.skip_ws();
            let close = if array { "]]" } else { "]" };
            if !p.s[p.i..].starts_with(close) {
                return Err(p.err("expected ']' after the table name"));
            }
            p.i += close.len();
            p.end_of_line()?;
            sections.last_mut().expect("root").span.end = line_start;
            sections.push(Section {
                header: Some(Header { path, array }),
                span: line_start..p.b.len(),
                pairs: Vec::new(),
            });
        } else {
            let start = p.i;
            let keys = p.keys()?;
            p.skip_ws();
            if p.b.get(p.i) != Some(&b'=') {
                return Err(p.err("expected '=' after the key"));
            }
            p.i += 1;
            p.skip_ws();
            let vstart = p.i;
            let value = p.value()?;
            let value_span = vstart..p.i;
            p.end_of_line()?;
            sections.last_mut().expect("root").pairs.push(Pair {
                keys,
                value,
                span: start..p.i,
                value_span,
            });
        }
    }
    let last = sections.last_mut().expect("root");
    if last.header.is_none() {
        last.span.end = text.len();
    }
    Ok(Doc { sections })
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        let line = self.s[..self.i.min(self.s.len())].matches('\n').count() + 1;
        format!("line {line}: {what}")
    }

    fn line_start(&self, i: usize) -> usize {
        self.s[..i].rfind('\n').map_or(0, |n| n + 1)
    }

    fn skip_ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_comment(&mut self) {
        if self.b.get(self.i) == Some(&b'#') {
            while self.i < self.b.len() && self.b[self.i] != b'\n' {
                self.i += 1;
            }
        }
    }

    /// Whitespace, comments and newlines between statements.
    fn skip_blank_lines(&mut self) {
        loop {
            self.skip_ws();
            self.skip_comment();
            match self.b.get(self.i) {
                Some(b'\n') => self.i += 1,
                Some(b'\r') if self.b.get(self.i + 1) == Some(&b'\n') => self.i += 2,
                _ => return,
            }
        }
    }

    /// Whitespace, newlines and comments inside an array.
    fn skip_in_array(&mut self) {
        loop {
            self.skip_ws();
            self.skip_comment();
            match self.b.get(self.i) {
                Some(b'\n' | b'\r') => self.i += 1,
                _ => return,
            }
        }
    }

    fn end_of_line(&mut self) -> Result<(), String> {
        self.skip_ws();
        self.skip_comment();
        match self.b.get(self.i) {
            None => Ok(()),
            Some(b'\n') => {
                self.i += 1;
                Ok(())
            }
            Some(b'\r') if self.b.get(self.i + 1) == Some(&b'\n') => {
                self.i += 2;
                Ok(())
            }
            Some(_) => Err(self.err("expected the end of the line")),
        }
    }

    /// `a.b."c d".'e'`
    fn keys(&mut self) -> Result<Vec<String>, String> {
        let mut keys = vec![self.key()?];
        loop {
            self.skip_ws();
            if self.b.get(self.i) != Some(&b'.') {
                return Ok(keys);
            }
            self.i += 1;
            self.skip_ws();
            keys.push(self.key()?);
        }
    }

    fn key(&mut self) -> Result<String, String> {
        match self.b.get(self.i) {
            Some(b'"') => self.basic_string(),
            Some(b'\'') => self.literal_string(),
            _ => {
                let start = self.i;
                while self
                    .b
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
                {
                    self.i += 1;
                }
                if start == self.i {
                    return Err(self.err("expected a key"));
                }
                Ok(self.s[start..self.i].to_string())
            }
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        let rest = &self.s[self.i..];
        if rest.starts_with("\"\"\"") {
            return self.multi_basic().map(Value::Str);
        }
        if rest.starts_with("'''") {
            return self.multi_literal().map(Value::Str);
        }
        match self.b.get(self.i) {
            Some(b'"') => self.basic_string().map(Value::Str),
            Some(b'\'') => self.literal_string().map(Value::Str),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_in_array();
                    if self.b.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(Value::Array(items));
                    }
                    items.push(self.value()?);
                    self.skip_in_array();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {}
                        _ => return Err(self.err("expected ',' or ']' in an array")),
                    }
                }
            }
            Some(b'{') => {
                let mut pairs: Vec<(String, Value)> = Vec::new();
                for m in self.inline_table()? {
                    insert_dotted(&mut pairs, &m.keys, m.value);
                }
                Ok(Value::Table(pairs))
            }
            _ => {
                let start = self.i;
                while self.b.get(self.i).is_some_and(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'+' | b'.' | b':')
                }) {
                    self.i += 1;
                }
                // A date and a time are separated by one space.
                if self.b.get(self.i) == Some(&b' ')
                    && self.s[start..self.i].len() == 10
                    && self.b.get(self.i + 1).is_some_and(u8::is_ascii_digit)
                {
                    self.i += 1;
                    while self.b.get(self.i).is_some_and(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.' | b':')
                    }) {
                        self.i += 1;
                    }
                }
                let word = &self.s[start..self.i];
                match word {
                    "" => Err(self.err("expected a value")),
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    _ => {
                        let digits = word.replace('_', "");
                        if let Ok(n) = digits.parse::<i64>() {
                            Ok(Value::Int(n))
                        } else if let Some(n) = radix(&digits) {
                            Ok(Value::Int(n))
                        } else if let Ok(f) = digits.parse::<f64>() {
                            Ok(Value::Float(f))
                        } else if word.as_bytes()[0].is_ascii_digit() {
                            Ok(Value::Other(word.to_string()))
                        } else {
                            Err(self.err(&format!("unknown value '{word}'")))
                        }
                    }
                }
            }
        }
    }

    /// At a `{`: the inline table's members, up to and past its `}`.
    fn inline_table(&mut self) -> Result<Vec<Member>, String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            self.skip_in_array();
            if self.b.get(self.i) == Some(&b'}') {
                self.i += 1;
                return Ok(out);
            }
            let start = self.i;
            let keys = self.keys()?;
            self.skip_ws();
            if self.b.get(self.i) != Some(&b'=') {
                return Err(self.err("expected '=' in an inline table"));
            }
            self.i += 1;
            self.skip_ws();
            let value = self.value()?;
            out.push(Member {
                keys,
                value,
                span: start..self.i,
            });
            self.skip_in_array();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return Err(self.err("expected ',' or '}' in an inline table")),
            }
        }
    }

    fn basic_string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            match self.b.get(self.i) {
                None | Some(b'\n') => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => self.escape(&mut out)?,
                Some(_) => {
                    let c = self.s[self.i..].chars().next().expect("in bounds");
                    out.push(c);
                    self.i += c.len_utf8();
                }
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), String> {
        let c = self.b.get(self.i + 1).copied();
        self.i += 2;
        let simple = match c {
            Some(b'b') => '\u{8}',
            Some(b't') => '\t',
            Some(b'n') => '\n',
            Some(b'f') => '\u{c}',
            Some(b'r') => '\r',
            Some(b'e') => '\u{1b}',
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(u @ (b'u' | b'U')) => {
                let n = if u == b'u' { 4 } else { 8 };
                let hex = self.s.get(self.i..self.i + n).unwrap_or("");
                let ch = u32::from_str_radix(hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| self.err("bad unicode escape"))?;
                self.i += n;
                ch
            }
            _ => return Err(self.err("unknown escape in a string")),
        };
        out.push(simple);
        Ok(())
    }

    fn literal_string(&mut self) -> Result<String, String> {
        self.i += 1;
        let start = self.i;
        while self.i < self.b.len() && !matches!(self.b[self.i], b'\'' | b'\n') {
            self.i += 1;
        }
        if self.b.get(self.i) != Some(&b'\'') {
            return Err(self.err("unterminated string"));
        }
        self.i += 1;
        Ok(self.s[start..self.i - 1].to_string())
    }

    fn skip_first_newline(&mut self) {
        if self.s[self.i..].starts_with("\r\n") {
            self.i += 2;
        } else if self.b.get(self.i) == Some(&b'\n') {
            self.i += 1;
        }
    }

    fn multi_basic(&mut self) -> Result<String, String> {
        self.i += 3;
        self.skip_first_newline();
        let mut out = String::new();
        loop {
            let rest = &self.s[self.i..];
            if rest.is_empty() {
                return Err(self.err("unterminated string"));
            }
            if rest.starts_with("\"\"\"") {
                // Up to two quotes may end the content: `""""x""""`.
                let quotes = rest.bytes().take_while(|&c| c == b'"').count().min(5);
                out.push_str(&"\"".repeat(quotes - 3));
                self.i += quotes;
                return Ok(out);
            }
            if let Some(escaped) = rest.strip_prefix('\\') {
                let after = escaped.trim_start_matches([' ', '\t']);
                if after.starts_with('\n') || after.starts_with("\r\n") {
                    // A line-ending backslash trims up to the next text.
                    let skip =
                        rest.len() - escaped.trim_start_matches([' ', '\t', '\n', '\r']).len();
                    self.i += skip;
                    continue;
                }
                self.escape(&mut out)?;
                continue;
            }
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            self.i += c.len_utf8();
        }
    }

    fn multi_literal(&mut self) -> Result<String, String> {
        self.i += 3;
        self.skip_first_newline();
        let Some(end) = self.s[self.i..].find("'''") else {
            return Err(self.err("unterminated string"));
        };
        let mut end = self.i + end;
        let quotes = self.s[end..]
            .bytes()
            .take_while(|&c| c == b'\'')
            .count()
            .min(5);
        end += quotes - 3;
        let out = self.s[self.i..end].to_string();
        self.i = end + 3;
        Ok(out)
    }
}

/// The members of the inline table whose `{` is at `at` in `text`.
pub fn inline_members(text: &str, at: usize) -> Result<Vec<Member>, String> {
    let mut p = Parser {
        s: text,
        b: text.as_bytes(),
        i: at,
    };
    if p.b.get(at) != Some(&b'{') {
        return Err(p.err("expected an inline table"));
    }
    p.inline_table()
}

fn radix(digits: &str) -> Option<i64> {
    let (base, rest) = match digits.get(..2)? {
        "0x" => (16, &digits[2..]),
        "0o" => (8, &digits[2..]),
        "0b" => (2, &digits[2..]),
        _ => return None,
    };
    i64::from_str_radix(rest, base).ok()
}

/// Put `v` at the dotted `keys` inside `pairs`, creating tables on the way.
pub fn insert_dotted(pairs: &mut Vec<(String, Value)>, keys: &[String], v: Value) {
    let (first, rest) = keys.split_first().expect("a key");
    if rest.is_empty() {
        pairs.retain(|(k, _)| k != first);
        pairs.push((first.clone(), v));
        return;
    }
    let idx = match pairs.iter().position(|(k, _)| k == first) {
        Some(i) if matches!(pairs[i].1, Value::Table(_)) => i,
        _ => {
            pairs.retain(|(k, _)| k != first);
            pairs.push((first.clone(), Value::Table(Vec::new())));
            pairs.len() - 1
        }
    };
    if let Value::Table(inner) = &mut pairs[idx].1 {
        insert_dotted(inner, rest, v);
    }
}

/// A key as TOML writes it: bare when it can be.
pub fn key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
    {
        k.to_string()
    } else {
        string(k)
    }
}

/// A basic string with the escapes TOML requires.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One value on one line: arrays as `[a, b]`, tables as `{ k = v }`.
pub fn render(v: &Value) -> String {
    match v {
        Value::Str(s) => string(s),
        Value::Int(n) => n.to_string(),
        Value::Float(f) if f.fract() == 0.0 && f.is_finite() => format!("{f:.1}"),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Other(s) => s.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(render).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Table(pairs) if pairs.is_empty() => "{}".to_string(),
        Value::Table(pairs) => {
            let inner: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{} = {}", key(k), render(v)))
                .collect();
            format!("{{ {} }}", inner.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODEX: &str = r#"# Codex settings
model = "o3"  # the default
approval_policy = 'on-request'

[profiles.fast]
model = "gpt-5"
when = 1979-05-27T07:32:00Z

[mcp_servers.docs]
command = "npx"
args = [
  "-y",   # quiet
  "@x/docs",
]
env = { "API_KEY" = "${KEY}", MODE = "a\tb\u00e9" }
startup_timeout_sec = 20
tool_timeout_sec = 1_0.5

[mcp_servers.docs.env2]
X = """
two\
   lines"""

[[tools.extra]]
name = 'C:\path'
"#;

    #[test]
    fn a_codex_file_reads_with_spans() {
        let d = parse(CODEX).unwrap();
        let heads: Vec<Option<Vec<String>>> = d
            .sections
            .iter()
            .map(|s| s.header.as_ref().map(|h| h.path.clone()))
            .collect();
        assert_eq!(heads.len(), 5);
        assert_eq!(heads[2], Some(vec!["mcp_servers".into(), "docs".into()]));
        assert!(d.sections[4].header.as_ref().unwrap().array);
        let docs = &d.sections[2];
        assert!(CODEX[docs.span.clone()].starts_with("[mcp_servers.docs]\n"));
        assert!(CODEX[docs.span.clone()].ends_with("tool_timeout_sec = 1_0.5\n\n"));
        let args = &docs.pairs[1];
        assert_eq!(
            args.value,
            Value::Array(vec![Value::Str("-y".into()), Value::Str("@x/docs".into())])
        );
        assert!(CODEX[args.value_span.clone()].ends_with(",\n]"));
        assert_eq!(
            docs.pairs[2].value,
            Value::Table(vec![
                ("API_KEY".into(), Value::Str("${KEY}".into())),
                ("MODE".into(), Value::Str("a\tbé".into()))
            ])
        );
        assert_eq!(docs.pairs[3].value, Value::Int(20));
        assert_eq!(docs.pairs[4].value, Value::Float(10.5));
        assert_eq!(d.sections[3].pairs[0].value, Value::Str("twolines".into()));
        assert_eq!(d.sections[4].pairs[0].value, Value::Str("C:\\path".into()));
        assert_eq!(
            d.sections[1].pairs[1].value,
            Value::Other("1979-05-27T07:32:00Z".into())
        );
        assert_eq!(d.sections[0].span, 0..CODEX.find("[profiles").unwrap());
        assert_eq!(d.sections[4].span.end, CODEX.len());
    }

    #[test]
    fn broken_files_name_the_line() {
        for (text, says) in [
            ("a = \"x\n", "line 1: unterminated"),
            ("a = 1\n[b\n", "line 2: expected ']'"),
            ("a = 1 2\n", "line 1: expected the end"),
            ("= 1\n", "line 1: expected a key"),
            ("a = [1,\n 2\n", "line 3: expected ','"),
            ("a = nope\n", "line 1: unknown value"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn written_values_read_back() {
        let v = Value::Table(vec![
            ("a b".into(), Value::Str("q\"\\\n\u{1}é".into())),
            (
                "n".into(),
                Value::Array(vec![Value::Int(-3), Value::Bool(true)]),
            ),
            ("f".into(), Value::Float(2.0)),
        ]);
        let text = format!("x = {}\n", render(&v));
        assert_eq!(parse(&text).unwrap().sections[0].pairs[0].value, v);
        assert_eq!(key("a-b_1"), "a-b_1");
        assert_eq!(key("a.b"), "\"a.b\"");
    }
}
