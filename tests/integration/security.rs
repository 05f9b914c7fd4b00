//! The daemon's HTTP surface refuses what it must.

use crate::common::*;
use serde_json::{Value, json};

struct Http {
    agent: ureq::Agent,
    port: u64,
    token: String,
}

impl Http {
    fn new(home: &TestHome) -> Http {
        let m = home.manifest().expect("manifest");
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(10)))
            .build()
            .into();
        Http {
            agent,
            port: m["port"].as_u64().unwrap(),
            token: m["token"].as_str().unwrap().into(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// POST raw bytes; the whole response, headers included.
    fn send(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> ureq::http::Response<ureq::Body> {
        let mut r = self.agent.post(self.url(path));
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send(body).unwrap()
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, String) {
        let resp = self.send(path, headers, &serde_json::to_vec(body).unwrap());
        let status = resp.status().as_u16();
        (
            status,
            resp.into_body().read_to_string().unwrap_or_default(),
        )
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }
}

#[test]
fn the_http_surface_checks_token_origin_host_and_sessions() {
    let home = TestHome::new("security");
    let (_b, _) = home.client();
    let http = Http::new(&home);
    let up = home.status()["upstreams"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/u/{up}/mcp");
    let bearer = http.bearer();
    let accept = ("Accept", "application/json, text/event-stream");
    let json_ct = ("Content-Type", "application/json");
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});

    // Health needs no token.
    let resp = http.agent.get(http.url("/health")).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    // No token, wrong token.
    assert_eq!(http.post(&path, &[accept, json_ct], &ping).0, 401);
    assert_eq!(
        http.post(
            &path,
            &[accept, json_ct, ("Authorization", "Bearer nope")],
            &ping
        )
        .0,
        401
    );
    let (code, _) = http.post("/api/status", &[], &json!({}));
    assert_eq!(code, 401);

    // Foreign Origin, foreign Host.
    let auth = ("Authorization", bearer.as_str());
    assert_eq!(
        http.post(
            &path,
            &[accept, json_ct, auth, ("Origin", "https://evil.example")],
            &ping
        )
        .0,
        403
    );
    assert_eq!(
        http.post(
            &path,
            &[accept, json_ct, auth, ("Origin", "http://localhost:3000")],
            &ping
        )
        .0,
        400
    );
    assert_eq!(
        http.post(
            &path,
            &[accept, json_ct, auth, ("Host", "evil.example")],
            &ping
        )
        .0,
        403
    );

    // Sessions: none → 400, unknown → 404 with -32001.
    let (code, body) = http.post(&path, &[accept, json_ct, auth], &ping);
    assert_eq!(code, 400, "{body}");
    let (code, body) = http.post(
        &path,
        &[accept, json_ct, auth, ("Mcp-Session-Id", "nope")],
        &ping,
    );
    assert_eq!(code, 404);
    assert!(body.contains("-32001"), "{body}");

    // A modern probe without a session gets a non-modern 400.
    let discover = json!({"jsonrpc": "2.0", "id": 5, "method": "server/discover"});
    let (code, body) = http.post(
        &path,
        &[
            accept,
            json_ct,
            auth,
            ("MCP-Protocol-Version", "2026-07-28"),
        ],
        &discover,
    );
    assert_eq!(code, 400);
    assert!(body.contains("-32000"), "{body}");

    // Accept and Content-Type rules; malformed JSON.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "h", "version": "1"}}});
    assert_eq!(
        http.post(
            &path,
            &[("Accept", "application/json"), json_ct, auth],
            &init
        )
        .0,
        406
    );
    assert_eq!(
        http.post(
            &path,
            &[accept, ("Content-Type", "text/plain"), auth],
            &init
        )
        .0,
        415
    );
    let resp = http.send(&path, &[accept, json_ct, auth], b"{oops");
    assert_eq!(resp.status().as_u16(), 400);
    assert!(
        resp.into_body()
            .read_to_string()
            .unwrap()
            .contains("-32700")
    );

    // A real session: a wrong protocol version header is refused; DELETE ends it.
    let resp = http.send(
        &path,
        &[accept, json_ct, auth],
        &serde_json::to_vec(&init).unwrap(),
    );
    assert_eq!(resp.status().as_u16(), 200);
    let sid = resp
        .headers()
        .get("mcp-session-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let sess = ("Mcp-Session-Id", sid.as_str());
    assert_eq!(
        http.post(
            &path,
            &[
                accept,
                json_ct,
                auth,
                sess,
                ("MCP-Protocol-Version", "1999-01-01")
            ],
            &ping
        )
        .0,
        400
    );
    assert_eq!(
        http.post(&path, &[accept, json_ct, auth, sess], &ping).0,
        200
    );
    let resp = http
        .agent
        .delete(http.url(&path))
        .header("Authorization", &bearer)
        .header("Mcp-Session-Id", &sid)
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        http.post(&path, &[accept, json_ct, auth, sess], &ping).0,
        404
    );
}

#[test]
fn home_and_secrets_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let home = TestHome::new("perms");
    std::fs::set_permissions(&home.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_b, _) = home.client();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home.dir), 0o700);
    assert_eq!(mode(&home.dir.join("daemon.json")), 0o600);
    assert_eq!(mode(&home.dir.join("daemon.log")), 0o600);
}

/// Send raw bytes to the daemon and read what it answers until it closes
/// or a read times out.
fn raw_exchange(port: u64, bytes: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.windows(4).any(|w| w == b"\r\n\r\n") && !out.starts_with(b"HTTP/1.1 100") {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn malformed_or_ambiguous_requests_are_refused_and_the_daemon_carries_on() {
    let home = TestHome::new("wire");
    let (_a, _) = home.client();
    let h = Http::new(&home);
    let auth = h.bearer();
    let head = |extra: &str| {
        format!(
            "POST /api/status HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: {auth}\r\n{extra}\r\n",
            h.port
        )
    };
    for (what, raw) in [
        (
            "a chunk size that overflows",
            head("Transfer-Encoding: chunked\r\n") + "1\r\na\r\nFFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n",
        ),
        (
            "chunk data without its CRLF",
            head("Transfer-Encoding: chunked\r\n") + "1\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "both Transfer-Encoding and Content-Length",
            head("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n") + "0\r\n\r\n",
        ),
        (
            "a Transfer-Encoding that is not exactly chunked",
            head("Transfer-Encoding: gzip, chunked\r\n") + "0\r\n\r\n",
        ),
        (
            "a signed Content-Length",
            head("Content-Length: +2\r\n") + "{}",
        ),
        (
            "whitespace before a colon",
            head("Content-Length : 2\r\n") + "{}",
        ),
    ] {
        let answer = raw_exchange(h.port, raw.as_bytes());
        // 400, or 413 for the size that overflows past any limit.
        assert!(
            answer.starts_with("HTTP/1.1 400") || answer.starts_with("HTTP/1.1 413"),
            "{what}: {answer:?}"
        );
    }
    // Still serving, and the scheme is matched case-insensitively.
    let ok = raw_exchange(
        h.port,
        format!(
            "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: bearer {}\r\n\r\n",
            h.port, h.token
        )
        .as_bytes(),
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok:?}");
}

#[test]
fn a_request_is_refused_before_its_body_is_read() {
    let home = TestHome::new("wireguard");
    let (_a, _) = home.client();
    let h = Http::new(&home);
    // A wrong token and a body it never sends: the answer comes at once,
    // without 100 Continue, and without waiting for the body.
    let t = std::time::Instant::now();
    let answer = raw_exchange(
        h.port,
        format!(
            "POST /api/upstreams HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer wrong\r\n\
             Expect: 100-continue\r\nContent-Length: 100000\r\n\r\n",
            h.port
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer:?}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        t.elapsed()
    );
    // A foreign Host likewise.
    let answer = raw_exchange(
        h.port,
        b"POST /api/upstreams HTTP/1.1\r\nHost: evil.example\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer:?}");
}

#[test]
fn a_head_past_its_limits_is_refused_with_431_and_the_daemon_carries_on() {
    let home = TestHome::new("wirelimits");
    let (_a, _) = home.client();
    let h = Http::new(&home);
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    let long = format!("X-Long: {}\r\n", "a".repeat(16 * 1024));
    for (what, extra) in [("101 header lines", many), ("a 16 KiB header line", long)] {
        let raw = format!(
            "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{extra}\r\n",
            h.port
        );
        let answer = raw_exchange(h.port, raw.as_bytes());
        assert!(answer.starts_with("HTTP/1.1 431"), "{what}: {answer:?}");
    }
    // Just within the limits: 100 header lines (Host, Authorization,
    // X-Long and 97 more), one of them 16 KiB less two bytes.
    let within: String = (0..97).map(|i| format!("X-{i}: v\r\n")).collect();
    let ok = raw_exchange(
        h.port,
        format!(
            "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n\
             X-Long: {}\r\n{within}\r\n",
            h.port,
            h.token,
            "a".repeat(16 * 1024 - 12)
        )
        .as_bytes(),
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok:?}");
}
