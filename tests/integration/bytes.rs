//! Transparency: what a server sends and what a client sends pass through
//! mcpshare byte for byte, except the ids and progress tokens it rewrites.

use crate::common::*;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

/// How long an answer may take; the fixture answers these at once.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// The raw text of the `result` member of a response line, if its id is `id`.
fn raw_result(line: &str, id: &Value) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Response<'a> {
        id: Option<Value>,
        method: Option<String>,
        #[serde(borrow)]
        result: Option<&'a RawValue>,
    }
    let r: Response = serde_json::from_str(line).ok()?;
    if r.method.is_some() || r.id.as_ref() != Some(id) {
        return None;
    }
    Some(r.result?.get().to_string())
}

/// The requests both runs are asked, as text (the `raw_args` arguments are
/// what `Value` would reorder and round).
fn requests() -> Vec<(Value, String)> {
    vec![
        (
            json!(1),
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#.into(),
        ),
        (
            json!(2),
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"raw","arguments":{}}}"#
                .into(),
        ),
        (
            json!(3),
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"raw_args","arguments":{"zeta":"z","alpha":1.50,"big":123456789012345678901234567890,"huge":-1e400,"list":[ 1 ,{"y":0,"b":1}]}}}"#
                .into(),
        ),
    ]
}

/// The `result` text of each of [`requests`], sent to `b` in turn.
fn results_of(b: &mut Bridge, through: &str) -> Vec<String> {
    let mut results = Vec::new();
    for (id, text) in requests() {
        b.send_raw(text.as_bytes());
        let found = loop {
            let Some(line) = b.recv_line(ANSWER_WAIT) else {
                break None;
            };
            if let Some(r) = raw_result(&line, &id) {
                break Some(r);
            }
        };
        results.push(found.unwrap_or_else(|| panic!("no answer {through} to {text}")));
    }
    results
}

#[test]
fn results_and_tool_lists_pass_through_byte_for_byte() {
    // The fixture run directly, without mcpshare (the harness drives any
    // stdio server).
    let mut direct = Bridge::spawn(Command::new(fixture()));
    direct.initialize();
    let want = results_of(&mut direct, "from the fixture directly");
    assert!(want[0].contains(r#"{"zeta":{"type":"string"},"alpha""#));
    assert!(want[1].contains("1e400"));
    let home = TestHome::new("bytes");
    let mut b = home.bridge(&[]);
    b.initialize();
    let got = results_of(&mut b, "through mcpshare");
    for ((_, text), (got, want)) in requests().into_iter().zip(got.into_iter().zip(want)) {
        assert_eq!(got, want, "the result of {text} changed on its way");
    }
}

/// The raw text of the `params` of a line that is a `method` message.
fn raw_params(line: &str, method: &str) -> Option<(Value, String)> {
    #[derive(serde::Deserialize)]
    struct Incoming<'a> {
        id: Option<Value>,
        method: Option<String>,
        #[serde(borrow)]
        params: Option<&'a RawValue>,
    }
    let m: Incoming = serde_json::from_str(line).ok()?;
    if m.method.as_deref() != Some(method) {
        return None;
    }
    Some((m.id.unwrap_or(Value::Null), m.params?.get().to_string()))
}

#[test]
fn progress_and_server_requests_keep_their_bytes() {
    let home = TestHome::new("bytes-stream");
    let mut b = home.bridge(&[]);
    b.initialize_with(json!({"sampling": {}}));
    // The client's token comes back as it sent it, escapes and all, in
    // params otherwise as the server wrote them.
    let token = r#""tok\"en \u00e9""#;
    b.send_raw(
        format!(
            r#"{{"jsonrpc":"2.0","id":"p1","method":"tools/call","params":{{"_meta":{{"progressToken":{token}}},"name":"raw_progress","arguments":{{}}}}}}"#
        )
        .as_bytes(),
    );
    let progress = loop {
        let line = b
            .recv_line(ANSWER_WAIT)
            .expect("no progress notification through mcpshare");
        if let Some((_, params)) = raw_params(&line, "notifications/progress") {
            break params;
        }
    };
    assert_eq!(
        progress,
        format!(
            r#"{{"progressToken":{token},"progress":1,"total":2.50,"message":"z","extra":{{"b":1,"a":1e400}}}}"#
        )
    );
    assert_eq!(
        b.response(&json!("p1"), WAIT)["result"]["content"][0]["text"],
        json!("done")
    );
    // The server's request reaches the client as the server wrote it.
    b.send_raw(
        br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"raw_ask","arguments":{}}}"#,
    );
    let (asked_id, params) = loop {
        let line = b
            .recv_line(ANSWER_WAIT)
            .expect("no sampling request through mcpshare");
        if let Some(found) = raw_params(&line, "sampling/createMessage") {
            break found;
        }
    };
    assert_eq!(
        params,
        r#"{"messages":[{"role":"user","content":{"type":"text","text":"hi"}}],"maxTokens":10,"zeta":{"y":123456789012345678901234567890,"b":1e400}}"#
    );
    b.send(&json!({"jsonrpc": "2.0", "id": asked_id, "result":
        {"role": "assistant", "content": {"type": "text", "text": "ok"}, "model": "m"}}));
    let r = b.response(&json!(2), WAIT);
    assert!(text_of(&r).is_some_and(|t| t.contains("assistant")), "{r}");
}

#[test]
fn an_answer_that_is_not_json_is_an_error_for_its_caller_at_once() {
    let home = TestHome::new("bytes-bad");
    let mut b = home.bridge(&[]);
    b.initialize();
    b.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "bad_json", "arguments": {}}}));
    let r = b.response(&json!(1), ANSWER_WAIT);
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("not valid JSON"), "{r}");
    // The upstream goes on serving.
    assert_eq!(b.call_text(json!(2), "echo", json!({"text": "on"})), "on");
}
