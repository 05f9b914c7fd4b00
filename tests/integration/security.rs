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
