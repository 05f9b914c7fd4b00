//! Resumable SSE streams on the per-upstream endpoint, over raw HTTP: event
//! ids, the priming event of 2025-11-25 sessions, `retry`, and `GET` with
//! `Last-Event-ID` after a connection was cut.

use crate::common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// The bounds the daemon documents (man page, HTTP SURFACE).
const STREAM_EVENTS_MAX: u64 = 256;
const RETRY_MS: &str = "1000";

/// One SSE event as written on the wire.
#[derive(Debug, Default, Clone)]
struct Event {
    id: Option<String>,
    retry: Option<String>,
    data: String,
}

impl Event {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

/// A response read off a raw connection: its status and headers, then its
/// body (JSON) or its SSE events, one at a time.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    conn: BufReader<TcpStream>,
    pending: String,
    chunked: bool,
    done: bool,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn body(mut self) -> String {
        if self.chunked {
            let mut all = String::new();
            while let Some(c) = self.chunk() {
                all.push_str(&c);
            }
            return all;
        }
        let len: usize = self
            .header("Content-Length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut buf = vec![0u8; len];
        self.conn.read_exact(&mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    /// The next HTTP chunk, or None at the last one (or a cut connection).
    fn chunk(&mut self) -> Option<String> {
        if self.done {
            return None;
        }
        let mut size = String::new();
        if self.conn.read_line(&mut size).ok()? == 0 {
            self.done = true;
            return None;
        }
        let n = usize::from_str_radix(size.trim(), 16).ok()?;
        let mut buf = vec![0u8; n + 2];
        self.conn.read_exact(&mut buf).ok()?;
        if n == 0 {
            self.done = true;
            return None;
        }
        buf.truncate(n);
        Some(String::from_utf8(buf).unwrap())
    }

    /// The next event (comments skipped), or None when the stream ends.
    fn event(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let mut e = Event::default();
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        e.id = Some(v.to_string());
                        any = true;
                    } else if let Some(v) = line.strip_prefix("retry: ") {
                        e.retry = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        e.data = v.strip_prefix(' ').unwrap_or(v).to_string();
                        any = true;
                    }
                }
                if any {
                    return Some(e);
                }
                continue;
            }
            let c = self.chunk()?;
            self.pending.push_str(&c);
        }
    }

    /// Every event up to the end of the stream.
    fn rest(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.event()).collect()
    }
}

struct Endpoint {
    port: u16,
    path: String,
    bearer: String,
}

impl Endpoint {
    fn new(home: &TestHome) -> Endpoint {
        let m = home.manifest().expect("manifest");
        let up = home.status()["upstreams"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        Endpoint {
            port: m["port"].as_u64().unwrap() as u16,
            path: format!("/u/{up}/mcp"),
            bearer: format!("Bearer {}", m["token"].as_str().unwrap()),
        }
    }

    fn send(&self, method: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Response {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut head = format!(
            "{method} {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: {}\r\n\
             Content-Length: {}\r\n",
            self.path,
            self.port,
            self.bearer,
            body.len()
        );
        if method == "POST" {
            head.push_str(
                "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n",
            );
        } else {
            head.push_str("Accept: text/event-stream\r\n");
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        (&s).write_all(head.as_bytes()).unwrap();
        (&s).write_all(body.as_bytes()).unwrap();
        let mut conn = BufReader::new(s);
        let mut status_line = String::new();
        conn.read_line(&mut status_line).unwrap();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            conn.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').unwrap();
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let chunked = headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("Transfer-Encoding") && v.eq_ignore_ascii_case("chunked")
        });
        Response {
            status,
            headers,
            conn,
            pending: String::new(),
            chunked,
            done: false,
        }
    }

    /// A new session of `version`; its id.
    fn open(&self, version: &str, capabilities: Value) -> String {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": capabilities,
            "clientInfo": {"name": "resume-test", "version": "1"}}});
        let r = self.send("POST", &[], Some(&init));
        assert_eq!(r.status, 200);
        let sid = r
            .header("Mcp-Session-Id")
            .expect("a session id")
            .to_string();
        let answer: Value = serde_json::from_str(&r.body()).unwrap();
        assert_eq!(answer["result"]["protocolVersion"], json!(version));
        let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let r = self.send("POST", &[("Mcp-Session-Id", &sid)], Some(&done));
        assert_eq!(r.status, 202);
        sid
    }

    /// `tools/call` of the fixture's `progress` tool, with a progress token.
    fn progress(&self, sid: &str, id: u64, steps: u64, delay_ms: u64) -> Response {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "progress", "arguments": {"steps": steps, "delay_ms": delay_ms},
            "_meta": {"progressToken": format!("t{id}")}}});
        let r = self.send("POST", &[("Mcp-Session-Id", sid)], Some(&call));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Type"), Some("text/event-stream"));
        r
    }

    fn resume(&self, sid: &str, last_event_id: &str) -> Response {
        self.send(
            "GET",
            &[("Mcp-Session-Id", sid), ("Last-Event-ID", last_event_id)],
            None,
        )
    }
}

fn seq_of(id: &str) -> (String, u64) {
    let (key, n) = id.rsplit_once('/').expect("a stream/position id");
    (key.to_string(), n.parse().expect("a position"))
}

fn progress_values(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .map(Event::json)
        .filter(|m| m["method"] == json!("notifications/progress"))
        .map(|m| m["params"]["progress"].as_u64().unwrap())
        .collect()
}

fn answers(events: &[Event], id: u64) -> usize {
    events
        .iter()
        .map(Event::json)
        .filter(|m| m["id"] == json!(id) && m.get("result").is_some())
        .count()
}

/// Every event has an id of the stream's key and ever larger positions.
fn assert_ids_increase(events: &[Event]) {
    let ids: Vec<(String, u64)> = events
        .iter()
        .map(|e| seq_of(e.id.as_deref().expect("every event has an id")))
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0].0 == w[1].0 && w[0].1 < w[1].1),
        "{ids:?}"
    );
}

#[test]
fn a_2025_11_25_stream_starts_with_a_priming_event_and_its_ids_increase() {
    let home = TestHome::new("resumeprime");
    let (_b, _) = home.client();
    let ep = Endpoint::new(&home);
    let sid = ep.open("2025-11-25", json!({}));
    let events = ep.progress(&sid, 1, 3, 20).rest();
    let first = &events[0];
    assert!(first.id.is_some(), "{first:?}");
    assert_eq!(first.data, "", "the priming event has empty data");
    assert_eq!(first.retry.as_deref(), Some(RETRY_MS));
    assert_ids_increase(&events);
    assert_eq!(progress_values(&events), vec![1, 2, 3]);
    assert_eq!(answers(&events, 1), 1);
    assert!(events[1..].iter().all(|e| e.retry.is_none()));
}

#[test]
fn an_older_session_gets_ids_but_no_priming_event() {
    let home = TestHome::new("resumeold");
    let (_b, _) = home.client();
    let ep = Endpoint::new(&home);
    let sid = ep.open("2025-06-18", json!({}));
    let events = ep.progress(&sid, 1, 2, 20).rest();
    assert!(events.iter().all(|e| !e.data.is_empty()), "{events:?}");
    assert!(events.iter().all(|e| e.retry.is_none()), "{events:?}");
    assert_ids_increase(&events);
    assert_eq!(progress_values(&events), vec![1, 2]);
    assert_eq!(answers(&events, 1), 1);
}

#[test]
fn a_stream_cut_mid_call_resumes_after_its_last_event_and_gets_the_answer_once() {
    let home = TestHome::new("resumecut");
    let (_b, _) = home.client();
    let ep = Endpoint::new(&home);
    let sid = ep.open("2025-11-25", json!({}));
    let mut post = ep.progress(&sid, 7, 5, 300);
    let priming = post.event().unwrap();
    assert_eq!(priming.data, "");
    let first = post.event().unwrap();
    assert_eq!(progress_values(std::slice::from_ref(&first)), vec![1]);
    // The client goes away mid-call.
    drop(post);
    let mut get = ep.resume(&sid, first.id.as_deref().unwrap());
    assert_eq!(get.status, 200);
    assert_eq!(get.header("Content-Type"), Some("text/event-stream"));
    let rest = get.rest();
    assert_eq!(progress_values(&rest), vec![2, 3, 4, 5], "{rest:?}");
    assert_eq!(answers(&rest, 7), 1, "the answer exactly once: {rest:?}");
    let all: Vec<Event> = [first].into_iter().chain(rest).collect();
    assert_ids_increase(&all);
    // The session carries on.
    assert_eq!(answers(&ep.progress(&sid, 8, 1, 0).rest(), 8), 1);
}

#[test]
fn an_unknown_or_expired_event_id_is_refused() {
    let home = TestHome::new("resumeunknown");
    let (_b, _) = home.client();
    let ep = Endpoint::new(&home);
    let sid = ep.open("2025-11-25", json!({}));
    let events = ep.progress(&sid, 1, 1, 0).rest();
    let (key, last) = seq_of(events.last().unwrap().id.as_deref().unwrap());
    let future = format!("{key}/{}", last + 1);
    for bad in ["p999/1", "nonsense", "g/5", future.as_str()] {
        let r = ep.resume(&sid, bad);
        assert_eq!(r.status, 400, "{bad}");
        let body: Value = serde_json::from_str(&r.body()).unwrap();
        assert_eq!(body["error"]["code"], json!(-32000), "{bad}: {body}");
    }
    // Another session's stream is not this one's.
    let other = ep.open("2025-11-25", json!({}));
    assert_eq!(ep.resume(&other, &format!("{key}/0")).status, 400);
    // Its own stream, ended, is still resumable: nothing after its answer.
    let mut r = ep.resume(&sid, &format!("{key}/{last}"));
    assert_eq!(r.status, 200);
    assert!(r.rest().is_empty());
}

#[test]
fn the_get_stream_resumes_and_a_closed_get_stream_keeps_its_session() {
    let home = TestHome::new("resumeget");
    let (_b, _) = home.client();
    let ep = Endpoint::new(&home);
    let sid = ep.open("2025-11-25", json!({"roots": {"listChanged": true}}));
    let mut get = ep.send("GET", &[("Mcp-Session-Id", &sid)], None);
    assert_eq!(get.status, 200);
    let priming = get.event().unwrap();
    assert_eq!(priming.data, "");
    assert_eq!(priming.retry.as_deref(), Some(RETRY_MS));
    // The daemon asks a client with roots for them on its stream.
    let ask = get.event().unwrap();
    assert_eq!(ask.json()["method"], json!("roots/list"), "{ask:?}");
    drop(get);
    // While no stream is open, the client says its roots changed: the
    // daemon's next question waits for the stream.
    let changed = json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"});
    let r = ep.send("POST", &[("Mcp-Session-Id", &sid)], Some(&changed));
    assert_eq!(r.status, 202);
    // Resume after the priming event, once the daemon noticed the cut
    // (until then the old stream is open: 409).
    let mut resumed = None;
    assert!(wait_until(WAIT, || {
        let r = ep.resume(&sid, priming.id.as_deref().unwrap());
        if r.status == 200 {
            resumed = Some(r);
            return true;
        }
        assert_eq!(r.status, 409);
        false
    }));
    let mut resumed = resumed.unwrap();
    let again = resumed.event().unwrap();
    assert_eq!(
        again.id, ask.id,
        "the event the cut may have lost comes first"
    );
    assert_eq!(again.data, ask.data);
    let next = resumed.event().unwrap();
    assert_eq!(next.json()["method"], json!("roots/list"), "{next:?}");
    assert_ids_increase(&[priming, again, next]);
}

#[test]
fn a_stream_past_its_buffer_resumes_with_the_newest_events_and_the_answer() {
    let home = TestHome::new("resumebound");
    let (_b, _) = home.client();
    let ep = Endpoint::new(&home);
    let sid = ep.open("2025-11-25", json!({}));
    let steps = STREAM_EVENTS_MAX + 44;
    let mut post = ep.progress(&sid, 3, steps, 0);
    let _priming = post.event().unwrap();
    let first = post.event().unwrap();
    let rest = post.rest();
    assert_eq!(answers(&rest, 3), 1, "the call ended");
    // The stream holds its newest 256 events: the answer and the progress
    // before it; what came first is gone.
    let mut r = ep.resume(&sid, first.id.as_deref().unwrap());
    assert_eq!(r.status, 200);
    let replayed = r.rest();
    assert_eq!(replayed.len() as u64, STREAM_EVENTS_MAX);
    let progress = progress_values(&replayed);
    let oldest_kept = steps - (STREAM_EVENTS_MAX - 1) + 1;
    assert_eq!(progress, (oldest_kept..=steps).collect::<Vec<_>>());
    assert_eq!(answers(&replayed, 3), 1);
    assert_eq!(replayed.last().unwrap().json()["id"], json!(3));
    assert_eq!(
        replayed.last().unwrap().id,
        rest.last().unwrap().id,
        "the same events, the same ids"
    );
}

/// The conformance suite's SSE scenarios send `MCP-Protocol-Version:
/// 2025-03-26` on a 2025-11-25 session: a supported version is accepted,
/// as the SDK's server does; an unsupported one is refused.
#[test]
fn a_supported_version_header_other_than_the_sessions_is_accepted() {
    let home = TestHome::new("resumeversion");
    let (_b, _) = home.client();
    let ep = Endpoint::new(&home);
    let sid = ep.open("2025-11-25", json!({}));
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let r = ep.send(
        "POST",
        &[
            ("Mcp-Session-Id", &sid),
            ("MCP-Protocol-Version", "2025-03-26"),
        ],
        Some(&ping),
    );
    assert_eq!(r.status, 200);
    let r = ep.send(
        "POST",
        &[
            ("Mcp-Session-Id", &sid),
            ("MCP-Protocol-Version", "1999-01-01"),
        ],
        Some(&ping),
    );
    assert_eq!(r.status, 400);
    // The session's own version still decides: its streams are primed.
    let events = ep.progress(&sid, 2, 1, 0).rest();
    assert_eq!(events[0].data, "");
}

/// The client went away and the call ended before it came back: its answer
/// was kept, not dropped, and the reconnect gets it.
#[test]
fn the_answer_to_a_call_whose_client_went_away_waits_for_its_reconnect() {
    let home = TestHome::new("resumelate");
    let (_b, _) = home.client();
    let ep = Endpoint::new(&home);
    let sid = ep.open("2025-11-25", json!({}));
    let mut post = ep.progress(&sid, 4, 4, 150);
    let _priming = post.event().unwrap();
    let first = post.event().unwrap();
    drop(post);
    // The writes after the cut fail; the upstream answers all the same.
    assert!(wait_until(
        WAIT,
        || home.status()["upstreams"][0]["inflight"] == json!(0)
    ));
    let mut r = ep.resume(&sid, first.id.as_deref().unwrap());
    assert_eq!(r.status, 200);
    let rest = r.rest();
    assert_eq!(progress_values(&rest), vec![2, 3, 4], "{rest:?}");
    assert_eq!(answers(&rest, 4), 1, "{rest:?}");
}
