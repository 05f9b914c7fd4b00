//! A small MCP server over stdio for mcpshare's tests, demo and benchmark.
//! Its tools make behaviour observable: echo, add, sleep (cancellable),
//! crash, progress, list_changed, log, roots and sampling (asking the
//! client), pid, env, hang (stop answering anything), deaf (stop reading
//! stdin at all), big (a result of `bytes` bytes), update (announce a
//! resource change), and level (the log level last set). It also serves
//! prompts and subscribable resources, and pages tools/list by 5. For
//! byte-exactness tests, `ordered` is listed with its schema's properties
//! out of alphabetical order, `raw` answers with a literal result (keys out
//! of order, an integer beyond 64 bits, `1e400`), `raw_args` answers
//! with the exact text of its arguments, `raw_progress` sends one progress
//! notification and `raw_ask` a `sampling/createMessage` whose params hold
//! the same, and `bad_json` answers with a line that is not JSON: all
//! written as text, never through `serde_json::Value`, which
//! would sort keys and round numbers.
//! Environment knobs: FIXTURE_STARTUP_DELAY_MS delays the first read;
//! FIXTURE_ROOTS_AT_START=1 asks `roots/list` once initialized (the tool
//! start_roots shows the answer); FIXTURE_LIST_CHANGED_AT_START=N sends
//! N `tools/list_changed` once initialized;
//! FIXTURE_NOISE=1 prints a non-JSON line on stdout first; FIXTURE_STDERR=N
//! writes N lines to stderr at start; FIXTURE_EXTRA_TOOLS=N lists N more
//! tools, `extra_0` to `extra_{N-1}` (paged by 5 like the others), each
//! answering with its own name.

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

const PAGE: usize = 5;

#[derive(Default)]
struct Server {
    hung: std::sync::atomic::AtomicBool,
    deaf: std::sync::atomic::AtomicBool,
    /// The capabilities its client declared in `initialize`.
    client_caps: Mutex<Option<String>>,
    /// What `roots/list` answered when asked at start (FIXTURE_ROOTS_AT_START).
    start_roots: Mutex<Option<String>>,
    level: Mutex<Option<String>>,
    subscriptions: Mutex<HashSet<String>>,
    counts: Mutex<HashMap<String, u64>>,
    out: Mutex<()>,
    cancelled: Mutex<HashSet<String>>,
    next_id: Mutex<u64>,
    waiting: Mutex<HashMap<u64, Sender<Value>>>,
}

impl Server {
    fn send(&self, msg: &Value) {
        self.send_text(&serde_json::to_string(msg).expect("json"));
    }

    fn send_text(&self, text: &str) {
        let mut line = text.as_bytes().to_vec();
        line.push(b'\n');
        let _g = self.out.lock().unwrap();
        let mut out = std::io::stdout().lock();
        if out.write_all(&line).and_then(|()| out.flush()).is_err() {
            std::process::exit(0);
        }
    }

    /// Ask the client something and wait (bounded) for the answer.
    fn ask(&self, method: &str, params: Value) -> Result<Value, String> {
        self.ask_text(method, &params.to_string())
    }

    /// [`Server::ask`] with params given as JSON text, sent as is.
    fn ask_text(&self, method: &str, params: &str) -> Result<Value, String> {
        let (tx, rx) = channel();
        let id = {
            let mut n = self.next_id.lock().unwrap();
            let id = *n;
            *n += 1;
            id
        };
        self.waiting.lock().unwrap().insert(id, tx);
        self.send_text(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":{},"params":{params}}}"#,
            json!(method)
        ));
        let reply = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| format!("no answer to {method}"))?;
        match reply.get("error") {
            Some(e) => Err(format!("client error: {e}")),
            None => Ok(reply.get("result").cloned().unwrap_or(Value::Null)),
        }
    }

    fn is_cancelled(&self, id: &Value) -> bool {
        self.cancelled.lock().unwrap().contains(&id.to_string())
    }
}

fn text(s: impl Into<String>) -> Value {
    json!({"content": [{"type": "text", "text": s.into()}]})
}

/// A tool whose schema lists its properties out of alphabetical order, as
/// text: clients show them in this order.
const ORDERED_TOOL: &str = r#"{"name":"ordered","description":"Properties out of order","inputSchema":{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"number","default":1.50},"mid":{"type":"integer","maximum":123456789012345678901234567890}},"required":["zeta"]}}"#;

/// The result of the `raw` tool, as text.
const RAW_RESULT: &str = r#"{"content":[{"type":"text","text":"raw \u00e9\n"}],"structuredContent":{"zeta":1,"alpha":2,"big":123456789012345678901234567890,"huge":1e400,"float":1.0,"nested":{"z":[ 1 , 2.50 ],"a":null}},"isError":false}"#;

/// What `raw_progress` sends after the progress token, as text.
const RAW_PROGRESS: &str = r#""progress":1,"total":2.50,"message":"z","extra":{"b":1,"a":1e400}"#;

/// The params of `raw_ask`'s request to the client, as text.
const RAW_ASK: &str = r#"{"messages":[{"role":"user","content":{"type":"text","text":"hi"}}],"maxTokens":10,"zeta":{"y":123456789012345678901234567890,"b":1e400}}"#;

/// Every listed tool, each as JSON text.
fn tools() -> Vec<String> {
    let mut all = vec![ORDERED_TOOL.to_string()];
    all.extend(tools_values().iter().map(Value::to_string));
    all.extend((0..extra_tools()).map(|i| {
        json!({"name": format!("extra_{i}"), "description": format!("Extra tool {i}: answers with its name"),
            "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}})
        .to_string()
    }));
    all
}

/// FIXTURE_EXTRA_TOOLS: how many `extra_N` tools to list after the others.
fn extra_tools() -> usize {
    std::env::var("FIXTURE_EXTRA_TOOLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn tools_values() -> Vec<Value> {
    let t = |name: &str, desc: &str, props: Value| json!({"name": name, "description": desc, "inputSchema": {"type": "object", "properties": props}});
    vec![
        t(
            "echo",
            "Echo the text back",
            json!({"text": {"type": "string"}}),
        ),
        t(
            "add",
            "Add a and b",
            json!({"a": {"type": "number"}, "b": {"type": "number"}}),
        ),
        t(
            "sleep",
            "Sleep for ms milliseconds (cancellable)",
            json!({"ms": {"type": "integer"}}),
        ),
        t(
            "crash",
            "Exit the server at once, without answering unless answer_bytes is given",
            json!({"code": {"type": "integer"}, "answer_bytes": {"type": "integer"}}),
        ),
        t(
            "progress",
            "Send steps progress notifications, then answer",
            json!({"steps": {"type": "integer"}, "delay_ms": {"type": "integer"}}),
        ),
        t(
            "list_changed",
            "Send notifications/tools/list_changed",
            json!({}),
        ),
        t(
            "log",
            "Send a notifications/message",
            json!({"level": {"type": "string"}, "message": {"type": "string"}}),
        ),
        t("roots", "Ask the client for its roots", json!({})),
        t(
            "sampling",
            "Ask the client to sample a message",
            json!({"prompt": {"type": "string"}}),
        ),
        t("pid", "Report this server's pid", json!({})),
        t(
            "env",
            "Report an environment variable",
            json!({"name": {"type": "string"}}),
        ),
    ]
}

fn call(server: &Server, id: &Value, params: &Value) -> Result<Value, (i64, String)> {
    let args = params.get("arguments").cloned().unwrap_or(json!({}));
    let name = params.get("name").and_then(Value::as_str).unwrap_or("");
    let num = |k: &str| args.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    match name {
        "echo" => Ok(text(args.get("text").and_then(Value::as_str).unwrap_or(""))),
        "add" => {
            let sum = num("a") + num("b");
            let mut r = text(format!("{sum}"));
            r["structuredContent"] = json!({"sum": sum});
            Ok(r)
        }
        "sleep" => {
            let until = Instant::now() + Duration::from_millis(num("ms") as u64);
            while Instant::now() < until {
                if server.is_cancelled(id) {
                    return Err((-32800, "cancelled".into()));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(text(format!("slept {} ms", num("ms") as u64)))
        }
        "crash" => {
            // With `answer_bytes`: answer first (a result of that many
            // bytes), then exit at once.
            if let Some(n) = args.get("answer_bytes").and_then(Value::as_u64) {
                server.send(
                    &json!({"jsonrpc": "2.0", "id": id, "result": text("x".repeat(n as usize))}),
                );
            }
            std::process::exit(num("code") as i32)
        }
        "progress" => {
            let token = params.pointer("/_meta/progressToken").cloned();
            let steps = num("steps") as u64;
            for i in 1..=steps {
                if let Some(t) = &token {
                    server.send(
                        &json!({"jsonrpc": "2.0", "method": "notifications/progress",
                        "params": {"progressToken": t, "progress": i, "total": steps}}),
                    );
                }
                std::thread::sleep(Duration::from_millis(num("delay_ms") as u64));
            }
            Ok(text(format!("done {steps}")))
        }
        "raw_progress" => {
            let token = params.pointer("/_meta/progressToken").cloned();
            if let Some(t) = token {
                server.send_text(&format!(
                    r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{{"progressToken":{t},{RAW_PROGRESS}}}}}"#
                ));
            }
            Ok(text("done"))
        }
        "raw_ask" => server
            .ask_text("sampling/createMessage", RAW_ASK)
            .map(|r| text(r.to_string()))
            .map_err(|e| (-32603, e)),
        "list_changed" => {
            server.send(&json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}));
            Ok(text("sent"))
        }
        "log" => {
            let level = args.get("level").and_then(Value::as_str).unwrap_or("info");
            let message = args.get("message").and_then(Value::as_str).unwrap_or("");
            server.send(&json!({"jsonrpc": "2.0", "method": "notifications/message",
                "params": {"level": level, "logger": "fixture", "data": message}}));
            Ok(text("logged"))
        }
        "roots" => server
            .ask("roots/list", json!({}))
            .map(|r| text(r.to_string()))
            .map_err(|e| (-32603, e)),
        "sampling" => {
            let prompt = args
                .get("prompt")
                .and_then(Value::as_str)
                .unwrap_or("hello");
            let p = json!({"messages": [{"role": "user", "content": {"type": "text", "text": prompt}}], "maxTokens": 10});
            server
                .ask("sampling/createMessage", p)
                .map(|r| text(r.to_string()))
                .map_err(|e| (-32603, e))
        }
        "elicit" | "elicit_url" => {
            let message = args.get("message").and_then(Value::as_str).unwrap_or("");
            let p = if name == "elicit_url" {
                json!({"mode": "url", "message": message, "elicitationId": "e-1",
                    "url": "https://example.invalid/consent"})
            } else {
                json!({"mode": "form", "message": message,
                    "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}})
            };
            server
                .ask("elicitation/create", p)
                .map(|r| text(r.to_string()))
                .map_err(|e| (-32603, e))
        }
        "sampling_tools" => {
            let p = json!({"messages": [{"role": "user", "content": {"type": "text", "text": "x"}}],
                "maxTokens": 10, "tools": [{"name": "t", "inputSchema": {"type": "object"}}]});
            server
                .ask("sampling/createMessage", p)
                .map(|r| text(r.to_string()))
                .map_err(|e| (-32603, e))
        }
        "client_caps" => Ok(text(
            server
                .client_caps
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_default(),
        )),
        "pid" => Ok(text(std::process::id().to_string())),
        "env" => {
            let n = args.get("name").and_then(Value::as_str).unwrap_or("");
            Ok(text(std::env::var(n).unwrap_or_default()))
        }
        "deaf" => {
            server.deaf.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(text("deaf"))
        }
        "big" => Ok(text("x".repeat(num("bytes") as usize))),
        "start_roots" => Ok(text(
            server
                .start_roots
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_else(|| "pending".into()),
        )),
        "hang" => {
            server.hung.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(text("hanging"))
        }
        "update" => {
            let uri = args.get("uri").and_then(Value::as_str).unwrap_or("");
            server.send(&json!({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": uri}}));
            Ok(text("sent"))
        }
        "level" => {
            let mut subs: Vec<String> = server
                .subscriptions
                .lock()
                .unwrap()
                .iter()
                .cloned()
                .collect();
            subs.sort();
            let level = server
                .level
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_else(|| "unset".into());
            Ok(text(format!("{level} {}", subs.join(","))))
        }
        "count" => {
            let m = args.get("method").and_then(Value::as_str).unwrap_or("");
            Ok(text(
                server
                    .counts
                    .lock()
                    .unwrap()
                    .get(m)
                    .copied()
                    .unwrap_or(0)
                    .to_string(),
            ))
        }
        n if n
            .strip_prefix("extra_")
            .and_then(|i| i.parse::<usize>().ok())
            .is_some_and(|i| i < extra_tools()) =>
        {
            Ok(text(n))
        }
        _ => Err((-32602, format!("unknown tool {name}"))),
    }
}

fn handle(server: &Arc<Server>, msg: Value) {
    if server.hung.load(std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let id = msg.get("id").cloned();
    let method = msg
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string);
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    if let Some(m) = &method {
        *server.counts.lock().unwrap().entry(m.clone()).or_default() += 1;
    }
    match (method.as_deref(), id) {
        (None, Some(id)) => {
            if let Some(n) = id.as_u64()
                && let Some(tx) = server.waiting.lock().unwrap().remove(&n)
            {
                let _ = tx.send(msg);
            }
        }
        (Some("notifications/cancelled"), None) => {
            if let Some(r) = params.get("requestId") {
                server.cancelled.lock().unwrap().insert(r.to_string());
            }
        }
        (Some("notifications/initialized"), None)
            if std::env::var("FIXTURE_ROOTS_AT_START").is_ok() =>
        {
            // As server-filesystem does: ask for roots as soon as initialized.
            let server = server.clone();
            std::thread::spawn(move || {
                let r = match server.ask("roots/list", json!({})) {
                    Ok(r) => r.to_string(),
                    Err(e) => format!("error: {e}"),
                };
                *server.start_roots.lock().unwrap() = Some(r);
            });
        }
        (Some("notifications/initialized"), None)
            if std::env::var("FIXTURE_LIST_CHANGED_AT_START").is_ok() =>
        {
            // As server-everything does: it registers the tools its
            // client's capabilities allow once initialized, and announces
            // each one.
            let n: u64 = std::env::var("FIXTURE_LIST_CHANGED_AT_START")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            for _ in 0..n {
                server
                    .send(&json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}));
            }
        }
        (Some(_), None) => {}
        (Some(method), Some(id)) => {
            let reply = {
                let id = id.clone();
                move |r: Result<Value, (i64, String)>| match r {
                    Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                    Err((code, message)) => {
                        json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
                    }
                }
            };
            match method {
                "initialize" => {
                    *server.client_caps.lock().unwrap() =
                        params.get("capabilities").map(Value::to_string);
                    let asked = params
                        .get("protocolVersion")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let v = VERSIONS
                        .iter()
                        .find(|v| **v == asked)
                        .copied()
                        .unwrap_or("2025-11-25");
                    server.send(&reply(Ok(json!({
                        "protocolVersion": v,
                        "capabilities": {"tools": {"listChanged": true}, "logging": {},
                            "prompts": {"listChanged": true}, "resources": {"subscribe": true, "listChanged": true}},
                        "serverInfo": {"name": "mcpshare-fixture", "version": "1.0.0"},
                        "instructions": "A test fixture."
                    }))));
                }
                "ping" => server.send(&reply(Ok(json!({})))),
                "tools/list" => {
                    let all = tools();
                    let start: usize = params.get("cursor").and_then(Value::as_str).and_then(|c| c.parse().ok()).unwrap_or(0);
                    let page: Vec<String> = all.iter().skip(start).take(PAGE).cloned().collect();
                    let next = if start + PAGE < all.len() {
                        format!(",\"nextCursor\":\"{}\"", start + PAGE)
                    } else {
                        String::new()
                    };
                    server.send_text(&format!(
                        "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{{\"tools\":[{}]{next}}}}}",
                        page.join(",")
                    ));
                }
                "prompts/list" => server.send(&reply(Ok(json!({"prompts": [{"name": "greet", "description": "Say hello"}]})))),
                "prompts/get" => server.send(&reply(Ok(json!({"messages": [{"role": "user", "content": {"type": "text", "text": "hello"}}]})))),
                "resources/list" => server.send(&reply(Ok(json!({"resources": [
                    {"uri": "fixture://a", "name": "a"}, {"uri": "fixture://b", "name": "b"}]})))),
                "resources/templates/list" => server.send(&reply(Ok(json!({"resourceTemplates": [
                    {"uriTemplate": "fixture://{name}", "name": "any"}]})))),
                "resources/read" => {
                    let uri = params.get("uri").and_then(Value::as_str).unwrap_or("");
                    server.send(&reply(Ok(json!({"contents": [{"uri": uri, "text": format!("contents of {uri}")}]}))));
                }
                "resources/subscribe" | "resources/unsubscribe" => {
                    let uri = params.get("uri").and_then(Value::as_str).unwrap_or("").to_string();
                    let mut subs = server.subscriptions.lock().unwrap();
                    if method == "resources/subscribe" {
                        subs.insert(uri);
                    } else {
                        subs.remove(&uri);
                    }
                    drop(subs);
                    server.send(&reply(Ok(json!({}))));
                }
                "logging/setLevel" => {
                    *server.level.lock().unwrap() = params.get("level").and_then(Value::as_str).map(str::to_string);
                    server.send(&reply(Ok(json!({}))));
                }
                "tools/call" if params.get("name") == Some(&json!("bad_json")) => server.send_text(
                    &format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"x"}}],"broken":}}}}"#),
                ),
                "tools/call" if params.get("name") == Some(&json!("raw")) => server.send_text(
                    &format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{RAW_RESULT}}}"),
                ),
                "tools/call" => {
                    let server = server.clone();
                    std::thread::spawn(move || {
                        let r = call(&server, &id, &params);
                        if !server.is_cancelled(&id) {
                            server.send(&reply(r));
                        }
                    });
                }
                _ => server.send(&reply(Err((-32601, format!("Method not found: {method}"))))),
            }
        }
        (None, None) => {}
    }
}

fn main() {
    if let Ok(ms) = std::env::var("FIXTURE_STARTUP_DELAY_MS") {
        std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(0)));
    }
    if std::env::var("FIXTURE_NOISE").is_ok() {
        println!("this line is not JSON");
    }
    eprintln!("fixture pid {} started", std::process::id());
    let noise: u64 = std::env::var("FIXTURE_STDERR")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    for i in 0..noise {
        eprintln!("fixture stderr line {i}");
    }
    let server = Arc::new(Server::default());
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        // Deaf: never read stdin again (a busy or deadlocked server).
        while server.deaf.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(answer) = raw_args(&line) {
            server.send_text(&answer);
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(msg) => handle(&server, msg),
            Err(e) => server.send(&json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": e.to_string()}})),
        }
    }
}

/// A `raw_args` call's answer: the exact text of its arguments, which are
/// read as raw text (they may hold numbers `Value` cannot, like 1e400).
fn raw_args(line: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Call<'a> {
        #[serde(borrow)]
        id: &'a serde_json::value::RawValue,
        method: String,
        #[serde(borrow)]
        params: Params<'a>,
    }
    #[derive(serde::Deserialize)]
    struct Params<'a> {
        name: String,
        #[serde(borrow)]
        arguments: &'a serde_json::value::RawValue,
    }
    let call: Call = serde_json::from_str(line).ok()?;
    if call.method != "tools/call" || call.params.name != "raw_args" {
        return None;
    }
    let result = text(call.params.arguments.get());
    Some(format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{},\"result\":{result}}}",
        call.id.get()
    ))
}
