//! One JSON-RPC message as the bytes it came in, with the little read from
//! it that routing needs (kind, id, method). Only the top-level `id` and
//! members named by path (a progress token, a cancelled request's id) are
//! ever rewritten, by splicing their text; nothing else is re-serialised,
//! so params, results and errors pass through byte for byte: key order,
//! numbers beyond 64 bits, `1e400` and all.

use crate::mcp::jsonrpc::{Kind, scan};
use serde_json::Value;
use serde_json::value::RawValue;
use std::ops::Range;

#[derive(Clone, Debug)]
pub struct Message {
    /// Valid JSON on one line: raw line breaks (whitespace outside strings,
    /// the only place JSON allows them) are spaces, so any message can be
    /// written as one line of stdio or one SSE `data:` line.
    text: String,
    kind: Kind,
    /// The top-level id, parsed; None when there is none.
    id: Option<Value>,
    /// Where the top-level id's value is in `text`.
    id_span: Option<Range<usize>>,
    method: Option<String>,
    /// What else classifying it took: `"jsonrpc":"2.0"`, a method that is
    /// not a string, a `result` or `error` member.
    version_ok: bool,
    method_bad: bool,
    has_answer: bool,
    /// An id serde cannot hold (1e400): no valid id.
    id_bad: bool,
    /// A member that routing reads or rewrites appears twice: parsers that
    /// keep the first and those that keep the last would route it apart.
    twice: bool,
}

/// A line of input: one message, or a batch of them.
pub enum Parsed {
    One(Message),
    Batch(Vec<Message>),
}

impl Message {
    /// Check `bytes` is one JSON value and read its head. Any JSON value is
    /// a message; one that is not a JSON-RPC object is [`Kind::Invalid`].
    pub fn parse(bytes: Vec<u8>) -> Result<Message, String> {
        Message::parse_keeping(bytes).map_err(|(why, _)| why)
    }

    /// As [`Message::parse`], giving back the bytes that are not JSON, so
    /// their id can still be looked for.
    pub fn parse_keeping(bytes: Vec<u8>) -> Result<Message, (String, Vec<u8>)> {
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => return Err((e.to_string(), e.into_bytes())),
        };
        if let Err(e) = serde_json::from_str::<&RawValue>(&text) {
            return Err((e.to_string(), text.into_bytes()));
        }
        Ok(Message::from_valid(text))
    }

    /// As [`Message::parse`], with a top-level array read as a batch.
    pub fn parse_batch(bytes: Vec<u8>) -> Result<Parsed, String> {
        let msg = Message::parse(bytes)?;
        if !msg.is_array() {
            return Ok(Parsed::One(msg));
        }
        let items: Vec<&RawValue> = serde_json::from_str(&msg.text).map_err(|e| e.to_string())?;
        Ok(Parsed::Batch(
            items
                .into_iter()
                .map(|i| Message::from_valid(i.get().to_string()))
                .collect(),
        ))
    }

    /// A message the daemon or bridge makes itself.
    pub fn from_value(v: &Value) -> Message {
        Message::from_valid(v.to_string())
    }

    /// A response carrying `result`, already JSON text (a cached list).
    pub fn result(id: &Value, result: &str) -> Message {
        Message::from_valid(format!(
            r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#
        ))
    }

    /// `text` must be valid JSON.
    fn from_valid(mut text: String) -> Message {
        if text.bytes().any(|b| b == b'\n' || b == b'\r') {
            text = text.replace(['\n', '\r'], " ");
        }
        let mut msg = Message {
            text,
            kind: Kind::Invalid,
            id: None,
            id_span: None,
            method: None,
            version_ok: false,
            method_bad: false,
            has_answer: false,
            id_bad: false,
            twice: false,
        };
        msg.read_head();
        msg
    }

    /// Find the top-level members routing needs, and classify (the rules
    /// of [`crate::mcp::jsonrpc::classify`]).
    fn read_head(&mut self) {
        let b = self.text.as_bytes();
        let open = scan::skip_ws(b, 0);
        if b.get(open) != Some(&b'{') {
            return;
        }
        for (key, value) in scan::members(b, open) {
            let raw = &self.text[value.clone()];
            let is = |name| scan::key_is(b, key.clone(), name);
            if is("jsonrpc") {
                self.version_ok = raw == "\"2.0\""
                    || serde_json::from_str::<String>(raw).is_ok_and(|v| v == "2.0");
            } else if is("id") && self.id_span.is_none() {
                match serde_json::from_str(raw) {
                    Ok(id) => self.id = Some(id),
                    Err(_) => self.id_bad = true,
                }
                self.id_span = Some(value);
            } else if is("method") && self.method.is_none() && !self.method_bad {
                match serde_json::from_str::<String>(raw) {
                    Ok(m) => self.method = Some(m),
                    Err(_) => self.method_bad = true,
                }
            } else if is("result") || is("error") {
                self.has_answer = true;
            }
        }
        self.twice = routed_twice(b, open);
        self.classify();
    }

    fn classify(&mut self) {
        let id_ok = |id: &Value| id.is_string() || id.is_number();
        let has_answer = self.has_answer;
        self.kind = match (&self.method, &self.id) {
            _ if !self.version_ok || self.method_bad || self.id_bad || self.twice => Kind::Invalid,
            (Some(_), None) => Kind::Notification,
            (Some(_), Some(id)) if id_ok(id) => Kind::Request,
            (None, Some(id)) if (id_ok(id) || id.is_null()) && has_answer => Kind::Response,
            _ => Kind::Invalid,
        };
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The top-level id, null when there is none.
    pub fn id(&self) -> Value {
        self.id.clone().unwrap_or(Value::Null)
    }

    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn into_text(self) -> String {
        self.text
    }

    pub fn is_array(&self) -> bool {
        self.text.trim_start().starts_with('[')
    }

    /// The raw text of the member at `path` (object keys from the top).
    pub fn raw_at(&self, path: &[&str]) -> Option<&str> {
        scan::find(self.text.as_bytes(), path).map(|r| &self.text[r])
    }

    /// The member at `path`, parsed; None when missing or not parseable.
    pub fn value_at(&self, path: &[&str]) -> Option<Value> {
        serde_json::from_str(self.raw_at(path)?).ok()
    }

    /// The string at `path`, if there is one.
    pub fn str_at(&self, path: &[&str]) -> Option<String> {
        serde_json::from_str(self.raw_at(path)?).ok()
    }

    /// The whole message parsed, for the rare reader that needs more than
    /// the head (the handshake); never used to write a message out. None
    /// when it holds a number serde cannot (1e400).
    pub fn to_value(&self) -> Option<Value> {
        serde_json::from_str(&self.text).ok()
    }

    /// Replace the top-level id (adding one if there is none).
    pub fn set_id(&mut self, id: &Value) {
        let text = id.to_string();
        match self.id_span.clone() {
            Some(span) => {
                self.splice(span.clone(), &text);
                self.id_span = Some(span.start..span.start + text.len());
            }
            None => {
                let b = self.text.as_bytes();
                let open = scan::skip_ws(b, 0);
                if b.get(open) != Some(&b'{') {
                    return;
                }
                let empty = b.get(scan::skip_ws(b, open + 1)) == Some(&b'}');
                let member = format!("\"id\":{text}{}", if empty { "" } else { "," });
                let at = open + 1;
                self.splice(at..at, &member);
                let start = at + "\"id\":".len();
                self.id_span = Some(start..start + text.len());
            }
        }
        self.id = Some(id.clone());
        self.id_bad = false;
        // A new id may change the kind (a request's id set to null).
        self.classify();
    }

    /// Replace the value at `path` with `text` (valid JSON); false, and
    /// nothing changed, when there is no such member.
    pub fn set_at(&mut self, path: &[&str], text: &str) -> bool {
        let Some(span) = scan::find(self.text.as_bytes(), path) else {
            return false;
        };
        self.splice(span, text);
        true
    }

    /// Replace `span` of the text, keeping the id's span right.
    fn splice(&mut self, span: Range<usize>, with: &str) {
        if let Some(id) = &mut self.id_span
            && span.end <= id.start
        {
            let shift = |i: usize| i + with.len() - span.len();
            *id = shift(id.start)..shift(id.end);
        }
        self.text.replace_range(span, with);
    }
}

/// Does a member that routing reads or rewrites appear twice in the object
/// at `open`: a top-level routing member, or `params.requestId`,
/// `params._meta` or its `progressToken`? The daemon reads the first of a
/// name; a server's JSON parser may keep the last, and a client could then
/// pick the id (or token) the server sees.
fn routed_twice(b: &[u8], open: usize) -> bool {
    let twice = |open: usize, names: &[&str]| -> (bool, Option<usize>, Option<usize>) {
        let mut seen = vec![0u8; names.len()];
        let (mut params, mut meta) = (None, None);
        for (key, value) in scan::members(b, open) {
            for (i, name) in names.iter().enumerate() {
                if scan::key_is(b, key.clone(), name) {
                    seen[i] += 1;
                    match *name {
                        "params" => params = Some(value.start),
                        "_meta" => meta = Some(value.start),
                        _ => {}
                    }
                }
            }
        }
        (seen.iter().any(|n| *n > 1), params, meta)
    };
    let is_object = |at: usize| b.get(at) == Some(&b'{');
    let (dup, params, _) = twice(
        open,
        &["jsonrpc", "id", "method", "params", "result", "error"],
    );
    if dup {
        return true;
    }
    let Some(params) = params.filter(|p| is_object(*p)) else {
        return false;
    };
    let (dup, _, meta) = twice(params, &["requestId", "_meta"]);
    if dup {
        return true;
    }
    meta.filter(|m| is_object(*m))
        .is_some_and(|m| twice(m, &["progressToken"]).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_routing_member_twice_makes_a_message_invalid() {
        let kind = |t: &str| Message::parse(t.as_bytes().to_vec()).unwrap().kind();
        for t in [
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{},"id":99}"#,
            r#"{"jsonrpc":"2.0","id":7,"method":"a","method":"b"}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{},"result":{}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"requestId":2}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"progressToken":1,"progressToken":2}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{},"_meta":{"progressToken":2}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{},"params":{}}"#,
        ] {
            assert_eq!(kind(t), Kind::Invalid, "{t}");
        }
        // Elsewhere a repeated key is the server's business.
        let t = r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"arguments":{"a":1,"a":2}}}"#;
        assert_eq!(kind(t), Kind::Request);
    }
    use serde_json::json;

    fn msg(text: &str) -> Message {
        Message::parse(text.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn classifies_like_jsonrpc() {
        for (text, kind) in [
            (r#"{"jsonrpc":"2.0","id":1,"method":"x"}"#, Kind::Request),
            (r#"{"id":"a","method":"x","jsonrpc":"2.0"}"#, Kind::Request),
            (r#"{"jsonrpc":"2.0","method":"x"}"#, Kind::Notification),
            (r#"{"jsonrpc":"2.0","id":1,"result":{}}"#, Kind::Response),
            (r#"{"jsonrpc":"2.0","id":null,"error":{}}"#, Kind::Response),
            (r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#, Kind::Invalid),
            (r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#, Kind::Invalid),
            (r#"{"jsonrpc":"2.0","id":1,"method":3}"#, Kind::Invalid),
            (
                r#"{"jsonrpc":"2.0","id":1e400,"method":"x"}"#,
                Kind::Invalid,
            ),
            (r#"{"jsonrpc":"2.0","id":1e400,"result":{}}"#, Kind::Invalid),
            (
                r#"{"jsonrpc":"2\u002e0","id":1,"method":"x"}"#,
                Kind::Request,
            ),
            (
                r#"{"jsonrpc":"2.0","i\u0064":1,"method":"x"}"#,
                Kind::Request,
            ),
            ("[1]", Kind::Invalid),
            ("7", Kind::Invalid),
        ] {
            let m = msg(text);
            assert_eq!(m.kind(), kind, "{text}");
            let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            if !text.contains("1e400") {
                assert_eq!(crate::mcp::jsonrpc::classify(&v), kind, "{text}");
            }
        }
        // Refused with id null: it has no id a client could match.
        assert_eq!(
            msg(r#"{"jsonrpc":"2.0","id":1e400,"method":"x"}"#).id(),
            Value::Null
        );
        let m = msg(r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"id":9}}"#);
        assert_eq!(m.id(), json!("a"));
        assert_eq!(m.method(), Some("tools/call"));
    }

    #[test]
    fn only_json_is_a_message() {
        assert!(Message::parse(b"{\"a\":".to_vec()).is_err());
        assert!(Message::parse(b"{} x".to_vec()).is_err());
        assert!(Message::parse(vec![b'"', 0xff, b'"']).is_err());
        // Numbers no f64 holds are still JSON.
        let m = msg(
            r#"{"jsonrpc":"2.0","id":1,"result":{"n":1e400,"b":123456789012345678901234567890}}"#,
        );
        assert_eq!(m.kind(), Kind::Response);
    }

    #[test]
    fn ids_of_every_type_are_spliced_and_nothing_else_changes() {
        let params = r#"{"z":1,"a":[1e400, 2.50 ],"id":"inner","s":"\"id\":5 \\"}"#;
        for id in [
            "7",
            "-0.5e3",
            "123456789012345678901234567890",
            r#""k\"1\\""#,
            r#""\u00e9""#,
            "null",
        ] {
            for new in [json!(42), json!("mcpshare-1"), json!("a\"b"), json!(null)] {
                let text = format!(
                    r#"{{ "params" : {params} , "id" :  {id} , "method":"m","jsonrpc":"2.0"}}"#
                );
                let mut m = msg(&text);
                m.set_id(&new);
                let want = format!(
                    r#"{{ "params" : {params} , "id" :  {new} , "method":"m","jsonrpc":"2.0"}}"#
                );
                assert_eq!(m.text(), want);
                assert_eq!(m.id(), new);
                assert_eq!(m.raw_at(&["params"]), Some(params));
                // Twice: the id's span follows its new text.
                m.set_id(&json!(3));
                assert_eq!(m.id(), json!(3));
                assert!(m.text().contains(r#""id" :  3 ,"#), "{}", m.text());
            }
        }
        // The id first, before what changes length.
        let mut m = msg(r#"{"id":1,"jsonrpc":"2.0","result":{"b":2,"a":1}}"#);
        m.set_id(&json!("abc"));
        assert_eq!(
            m.text(),
            r#"{"id":"abc","jsonrpc":"2.0","result":{"b":2,"a":1}}"#
        );
        assert_eq!(m.kind(), Kind::Response);
    }

    #[test]
    fn an_id_is_added_where_there_was_none() {
        let mut m = msg(r#"{"jsonrpc":"2.0","method":"m"}"#);
        m.set_id(&json!(5));
        assert_eq!(m.text(), r#"{"id":5,"jsonrpc":"2.0","method":"m"}"#);
        assert_eq!(m.kind(), Kind::Request);
        let mut m = msg(" { } ");
        m.set_id(&json!("x"));
        assert_eq!(m.text(), r#" {"id":"x" } "#);
    }

    #[test]
    fn progress_tokens_are_spliced_at_their_path() {
        let text = r#"{"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"name":"t","arguments":{"_meta":{"progressToken":1}},"_meta" : { "other":[{}], "progressToken" : "tok\"en" },"z":1e400}}"#;
        let mut m = msg(text);
        let path = ["params", "_meta", "progressToken"];
        assert_eq!(m.raw_at(&path), Some(r#""tok\"en""#));
        assert_eq!(m.value_at(&path), Some(json!("tok\"en")));
        assert!(m.set_at(&path, "17"));
        m.set_id(&json!(17));
        assert_eq!(
            m.text(),
            text.replace(r#""tok\"en""#, "17")
                .replace(r#""id":"c""#, r#""id":17"#)
        );
        // The token before the id: the id's span moves with the splice.
        let mut m = msg(
            r#"{"params":{"_meta":{"progressToken":"a-long-token"}},"id":"c","jsonrpc":"2.0","method":"m"}"#,
        );
        assert!(m.set_at(&path, "9"));
        m.set_id(&json!(9));
        assert_eq!(
            m.text(),
            r#"{"params":{"_meta":{"progressToken":9}},"id":9,"jsonrpc":"2.0","method":"m"}"#
        );
        // A number token, back to a string.
        assert!(m.set_at(&path, r#""tok\"en""#));
        assert_eq!(m.value_at(&path), Some(json!("tok\"en")));
        // None there: nothing changes.
        let mut m = msg(r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"_meta":{}}}"#);
        let before = m.text().to_string();
        assert!(!m.set_at(&path, "1"));
        assert!(!m.set_at(&["params", "_meta", "progressToken", "x"], "1"));
        assert_eq!(m.text(), before);
        // Escaped key names are the same names.
        let mut m = msg(
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress\u0054oken":7,"progress":1}}"#,
        );
        assert_eq!(m.value_at(&["params", "progressToken"]), Some(json!(7)));
        assert!(m.set_at(&["params", "progressToken"], r#""t""#));
        assert_eq!(
            m.text(),
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress\u0054oken":"t","progress":1}}"#
        );
    }

    #[test]
    fn line_breaks_become_spaces_and_batches_split() {
        let m = msg("{\"jsonrpc\":\"2.0\",\r\n\"method\":\"m\",\n\"params\":{\"s\":\"a\\nb\"}}");
        assert_eq!(
            m.text(),
            "{\"jsonrpc\":\"2.0\",  \"method\":\"m\", \"params\":{\"s\":\"a\\nb\"}}"
        );
        assert_eq!(m.kind(), Kind::Notification);
        let Ok(Parsed::Batch(items)) = Message::parse_batch(
            br#"[{"jsonrpc":"2.0","id":1,"method":"a","params":{"b":1,"a":2}}, {"jsonrpc":"2.0","method":"n"}]"#
                .to_vec(),
        ) else {
            panic!("a batch")
        };
        assert_eq!(
            items[0].text(),
            r#"{"jsonrpc":"2.0","id":1,"method":"a","params":{"b":1,"a":2}}"#
        );
        assert_eq!(items[1].kind(), Kind::Notification);
        assert!(matches!(
            Message::parse_batch(b"{}".to_vec()),
            Ok(Parsed::One(_))
        ));
    }

    #[test]
    fn results_are_made_around_raw_text() {
        let m = Message::result(&json!("i"), r#"{"z":1,"a":1e400}"#);
        assert_eq!(
            m.text(),
            r#"{"jsonrpc":"2.0","id":"i","result":{"z":1,"a":1e400}}"#
        );
        assert_eq!(m.kind(), Kind::Response);
    }
}
