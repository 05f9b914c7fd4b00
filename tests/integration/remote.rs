//! Remote servers of the config: the daemon runs `mcpshare remote` as
//! their upstream. The Streamable HTTP "remote" is a daemon's own
//! per-upstream endpoint (serving the fixture); the legacy SSE one is a
//! small server on a thread of this test.

use crate::common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// The fixture running through `home`'s daemon: the bridge that keeps it
/// up and the URL and token of its MCP endpoint.
fn remote_fixture(home: &TestHome) -> (Bridge, String, String) {
    let (b, _) = home.client();
    let m = home.manifest().expect("a daemon runs");
    let st = home.status();
    let id = st["upstreams"][0]["id"].as_str().unwrap().to_string();
    let url = format!("http://127.0.0.1:{}/u/{id}/mcp", m["port"]);
    (b, url, m["token"].as_str().unwrap().to_string())
}

/// Write the config and make the running daemon read it at once.
fn configure(home: &TestHome, servers: Value) {
    home.write_config(servers);
    let out = home.mcpshare(&["reload"]);
    assert!(out.status.success(), "{out:?}");
}

/// `mcpshare run NAME` with TOKEN in its environment, not initialized.
fn run_named(home: &TestHome, name: &str, token: &str) -> Bridge {
    let mut c = home.cmd();
    c.arg("run").arg(name).env("TOKEN", token);
    Bridge::spawn(c)
}

/// The upstream of configured server `name`, as status shows it.
fn upstream_of(home: &TestHome, name: &str) -> Value {
    let st = home.status();
    let ids = st["config"]["servers"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
        .map(|s| s["upstreams"].clone())
        .unwrap_or(Value::Null);
    st["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| Some(&u["id"]) == ids.get(0))
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn a_streamable_http_server_is_relayed_with_progress_and_errors() {
    let home = TestHome::new("remotehttp");
    let (_fx, url, token) = remote_fixture(&home);
    configure(
        &home,
        json!({"r": {"type": "http", "url": url,
        "headers": {"Authorization": "Bearer ${TOKEN}"}}}),
    );
    let mut r = run_named(&home, "r", &token);
    r.initialize();
    let up = upstream_of(&home, "r");
    let pid = up["pid"].as_u64().expect("the relay runs") as u32;
    home.seen_upstreams.lock().unwrap().push(pid);
    assert_eq!(up["command"][1], "remote", "{up}");

    let tools = r.request(json!(1), "tools/list", json!({}));
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{tools}"))
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"echo"), "{names:?}");
    let cursor = tools["result"]["nextCursor"].clone();
    let more = r.request(json!(11), "tools/list", json!({"cursor": cursor}));
    assert!(
        more["result"]["tools"].is_array(),
        "the next page comes too: {more}"
    );
    assert_eq!(
        r.call_text(json!(2), "echo", json!({"text": "over there"})),
        "over there"
    );

    r.send(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "progress", "arguments": {"steps": 3, "delay_ms": 20},
                   "_meta": {"progressToken": "tok"}}}));
    let done = r.response(&json!(3), WAIT);
    assert_eq!(text_of(&done).as_deref(), Some("done 3"), "{done}");
    let progress: Vec<&Value> = r
        .backlog
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{:?}", r.backlog);
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "tok")
    );

    let bad = r.call(json!(4), "no-such-tool", json!({}));
    assert!(bad["error"]["message"].is_string(), "{bad}");
    let bad = r.request(json!(5), "no/such/method", json!({}));
    assert_eq!(bad["error"]["code"], json!(-32601), "{bad}");

    let out = home.mcpshare(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("remote") && text.contains(&url), "{text}");
    let json = String::from_utf8_lossy(&home.mcpshare(&["status", "--json"]).stdout).into_owned();
    let list = String::from_utf8_lossy(&home.mcpshare(&["list", "--json"]).stdout).into_owned();
    for shown in [&text.to_string(), &json, &list] {
        assert!(!shown.contains(&token), "a header value is shown: {shown}");
    }
    let id = up["id"].as_str().unwrap();
    let logs = home.mcpshare(&["logs", id]);
    let logs = String::from_utf8_lossy(&logs.stdout);
    assert!(
        logs.contains("connected to") && !logs.contains(&token),
        "{logs}"
    );
}

#[test]
fn a_wrong_token_fails_initialize_saying_why() {
    let home = TestHome::new("remotetoken");
    let (_fx, url, _token) = remote_fixture(&home);
    configure(
        &home,
        json!({"r": {"url": url,
        "headers": {"Authorization": "Bearer ${TOKEN}"}}}),
    );
    let mut r = run_named(&home, "r", "not-the-token");
    let e = r.initialize_error();
    assert!(e.contains("HTTP 401") && e.contains(&url), "{e}");
    assert!(!e.contains("not-the-token"), "{e}");
}

#[test]
fn a_remote_that_goes_away_gives_errors_not_a_hang() {
    let far = TestHome::new("remotefar");
    let (fx, url, token) = remote_fixture(&far);
    let near = TestHome::new("remotenear");
    near.write_config(json!({"r": {"url": url,
        "headers": {"Authorization": "Bearer ${TOKEN}"}}}));
    let mut r = run_named(&near, "r", &token);
    r.initialize();
    let pid = upstream_of(&near, "r")["pid"].as_u64().unwrap() as u32;
    near.seen_upstreams.lock().unwrap().push(pid);
    assert_eq!(r.call_text(json!(1), "echo", json!({"text": "hi"})), "hi");

    drop(fx);
    let out = far.mcpshare(&["stop"]);
    assert!(out.status.success(), "{out:?}");
    let port = far_port(&url);
    let e = r.call(json!(2), "echo", json!({"text": "still there?"}));
    let message = e["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{e}"));
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert_eq!(
        r.request(json!(3), "ping", json!({}))["result"],
        json!({}),
        "the client itself stays connected"
    );
}

fn far_port(url: &str) -> String {
    url.split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn https_is_refused_at_add_and_at_start_with_the_way_around_it() {
    let home = TestHome::new("remotetls");
    let out = home.mcpshare(&["add", "s", "--url", "https://example.com/mcp"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("https://example.com/mcp")
            && err.contains("no TLS")
            && err.contains("mcp-remote"),
        "{err}"
    );
    assert!(!home.config_path().exists(), "nothing was written");

    home.write_config(json!({"s": {"url": "https://example.com/mcp"}}));
    let mut s = home.named("s", &[]);
    let e = s.initialize_error();
    assert!(e.contains("no TLS") && e.contains("mcp-remote"), "{e}");
}

/// What the legacy SSE server saw.
#[derive(Default)]
struct Seen {
    posts: Vec<(String, Value)>,
    /// The open event stream, where answers go.
    stream: Option<TcpStream>,
}

/// A legacy HTTP+SSE MCP server on 127.0.0.1: GET /sse opens the stream
/// (its first event names /messages?session=1), each POST /messages gets
/// 202 and its answer as a `message` event. The header `X-Key` of each
/// POST is recorded. Every connection gets a thread; the accept loop ends
/// when `stop` is set and one more connection arrives.
fn legacy_sse_server() -> (u16, Arc<Mutex<Seen>>, Arc<std::sync::atomic::AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (s, st) = (seen.clone(), stop.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if st.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let s = s.clone();
            std::thread::spawn(move || serve_legacy(conn, &s));
        }
    });
    (port, seen, stop)
}

fn serve_legacy(conn: TcpStream, seen: &Mutex<Seen>) {
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let (mut length, mut key) = (0usize, String::new());
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap_or((&h, ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = v.trim().parse().unwrap_or(0),
            "x-key" => key = v.trim().to_string(),
            _ => {}
        }
    }
    let mut conn = conn;
    if line.starts_with("GET /sse") {
        conn.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n\
              : hello\n\nevent: endpoint\ndata: /messages?session=1\n\n",
        )
        .unwrap();
        seen.lock().unwrap().stream = Some(conn);
        return;
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).unwrap();
    let _ =
        conn.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    if target != "/messages?session=1" {
        return;
    }
    let msg: Value = serde_json::from_slice(&body).unwrap();
    let answer = match msg["method"].as_str() {
        _ if msg.get("id").is_none() => None,
        Some("initialize") => Some(json!({"protocolVersion": "2024-11-05",
            "capabilities": {"tools": {}}, "serverInfo": {"name": "legacy", "version": "1"}})),
        Some("tools/list") => Some(json!({"tools": [{"name": "echo",
            "inputSchema": {"type": "object"}}]})),
        Some("tools/call") => Some(json!({"content": [{"type": "text",
            "text": format!("legacy {}", msg["params"]["arguments"]["text"].as_str().unwrap_or(""))}]})),
        _ => Some(json!({})),
    };
    let mut s = seen.lock().unwrap();
    s.posts.push((key, msg.clone()));
    if let (Some(result), Some(stream)) = (answer, s.stream.as_mut()) {
        let reply = json!({"jsonrpc": "2.0", "id": msg["id"], "result": result});
        let _ = stream.write_all(format!("event: message\ndata: {reply}\n\n").as_bytes());
    }
}

#[test]
fn a_legacy_sse_server_is_relayed_with_its_headers() {
    let home = TestHome::new("remotesse");
    let (port, seen, stop) = legacy_sse_server();
    home.write_config(json!({"old": {"type": "sse",
        "url": format!("http://127.0.0.1:{port}/sse"),
        "headers": {"X-Key": "${TOKEN}"}}}));
    let mut r = run_named(&home, "old", "k-123");
    let init = r.initialize();
    assert_eq!(init["result"]["serverInfo"]["name"], "legacy", "{init}");
    let pid = upstream_of(&home, "old")["pid"].as_u64().unwrap() as u32;
    home.seen_upstreams.lock().unwrap().push(pid);
    let tools = r.request(json!(1), "tools/list", json!({}));
    assert_eq!(tools["result"]["tools"][0]["name"], "echo", "{tools}");
    assert_eq!(
        r.call_text(json!(2), "echo", json!({"text": "hi"})),
        "legacy hi"
    );
    {
        let s = seen.lock().unwrap();
        let methods: Vec<&str> = s
            .posts
            .iter()
            .filter_map(|p| p.1["method"].as_str())
            .collect();
        assert!(
            methods.starts_with(&["initialize", "notifications/initialized"]),
            "{methods:?}"
        );
        assert!(
            s.posts.iter().all(|p| p.0 == "k-123"),
            "every POST carries the header"
        );
    }
    drop(r);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = TcpStream::connect(("127.0.0.1", port));
}

/// What the small Streamable HTTP server saw: each request's method and
/// session header, and whether it forgets its sessions now.
#[derive(Default)]
struct Http {
    seen: Vec<(String, String)>,
    forget: bool,
    sessions: usize,
}

/// A Streamable HTTP server on 127.0.0.1 that answers in JSON, gives each
/// `initialize` a new session (s1, s2, ...), has no GET stream (405), and
/// once `forget` is set answers 404 to every session it gave.
fn forgetful_server() -> (u16, Arc<Mutex<Http>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = Arc::new(Mutex::new(Http::default()));
    let st = state.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let st = st.clone();
            std::thread::spawn(move || serve_forgetful(conn, &st));
        }
    });
    (port, state)
}

fn serve_forgetful(conn: TcpStream, state: &Mutex<Http>) {
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let method = line.split_whitespace().next().unwrap_or("").to_string();
        let (mut length, mut session) = (0usize, String::new());
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap_or((&h, ""));
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap_or(0),
                "mcp-session-id" => session = v.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let mut s = state.lock().unwrap();
        let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let what = msg["method"].as_str().unwrap_or(&method).to_string();
        s.seen.push((what.clone(), session.clone()));
        let (status, extra, answer) = if method == "GET" {
            ("405 Method Not Allowed", String::new(), String::new())
        } else if !session.is_empty() && s.forget {
            ("404 Not Found", String::new(), String::new())
        } else if method == "DELETE" || msg.get("id").is_none() {
            ("202 Accepted", String::new(), String::new())
        } else if what == "initialize" {
            s.sessions += 1;
            let result = json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                "serverInfo": {"name": "forgetful", "version": "1"}});
            (
                "200 OK",
                format!("Mcp-Session-Id: s{}\r\n", s.sessions),
                json!({"jsonrpc": "2.0", "id": msg["id"], "result": result}).to_string(),
            )
        } else {
            let result = if what == "tools/list" {
                json!({"tools": []})
            } else {
                json!({})
            };
            let reply = json!({"jsonrpc": "2.0", "id": msg["id"], "result": result});
            ("200 OK", String::new(), reply.to_string())
        };
        drop(s);
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n",
            answer.len()
        );
        if conn.write_all(head.as_bytes()).is_err() || conn.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn a_forgotten_session_is_an_error_then_a_restart_and_stdin_end_deletes_the_session() {
    let home = TestHome::new("remoteforget");
    let (port, state) = forgetful_server();
    home.write_config(json!({"f": {"url": format!("http://127.0.0.1:{port}/mcp")}}));
    let mut r = run_named(&home, "f", "");
    r.initialize();
    let first = upstream_of(&home, "f");
    let pid = first["pid"].as_u64().unwrap() as u32;
    home.seen_upstreams.lock().unwrap().push(pid);
    let list = r.request(json!(1), "tools/list", json!({}));
    assert_eq!(list["result"]["tools"], json!([]), "{list}");
    assert!(
        state
            .lock()
            .unwrap()
            .seen
            .contains(&("tools/list".into(), "s1".into())),
        "the session's id goes with each message: {:?}",
        state.lock().unwrap().seen
    );

    state.lock().unwrap().forget = true;
    // A call: the daemon answers a repeated tools/list from its cache.
    let gone = r.call(json!(2), "any", json!({}));
    let e = gone["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{gone}"));
    assert!(
        e.contains("HTTP 404") && e.contains(&port.to_string()),
        "{e}"
    );
    state.lock().unwrap().forget = false;
    // Not a new session behind the client's back: the relay exits and the
    // daemon starts a new one, as after a crash.
    assert!(
        wait_until(WAIT, || state.lock().unwrap().sessions == 2
            && upstream_of(&home, "f")["state"] == "running"),
        "no restart: {:?}",
        state.lock().unwrap().seen
    );
    let again = upstream_of(&home, "f");
    assert_ne!(again["pid"], first["pid"], "{again}");
    assert_eq!(again["restarts"], json!(1), "{again}");
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(again["pid"].as_u64().unwrap() as u32);
    let call = r.call(json!(3), "any", json!({}));
    assert_eq!(call["result"], json!({}), "{call}");
    assert!(
        state
            .lock()
            .unwrap()
            .seen
            .contains(&("tools/call".into(), "s2".into())),
        "{:?}",
        state.lock().unwrap().seen
    );

    drop(r);
    let out = home.mcpshare(&["stop"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        wait_until(WAIT, || state
            .lock()
            .unwrap()
            .seen
            .contains(&("DELETE".into(), "s2".into()))),
        "stdin's end DELETEs the session: {:?}",
        state.lock().unwrap().seen
    );
}
