//! The web console: its login (one-time code for a cookie), the checks on
//! every request (Host, Origin, cookie, CSRF token, no query string), its
//! live feed, its actions, and the bridge reports it keeps.

use crate::common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One answer read off a raw connection.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Send one request as written (every header under the test's control,
/// Host included) and read the whole answer; the connection closes.
fn raw(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("Host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// A browser's login to one daemon.
struct Page {
    port: u16,
    cookie: String,
    csrf: String,
}

impl Page {
    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn post(&self, path: &str, extra: &[(&str, &str)]) -> Answer {
        let origin = self.origin();
        let mut h = vec![
            ("Origin", origin.as_str()),
            ("Cookie", self.cookie.as_str()),
            ("X-CSRF-Token", self.csrf.as_str()),
            ("Content-Type", "application/json"),
        ];
        // An extra header replaces the default of the same name.
        h.retain(|(k, _)| !extra.iter().any(|(e, _)| e.eq_ignore_ascii_case(k)));
        h.extend_from_slice(extra);
        h.retain(|(_, v)| !v.is_empty());
        raw(self.port, "POST", path, &h, "{}")
    }
}

/// `mcpshare console`'s URL: port and code.
fn console_url(home: &TestHome) -> (u16, String) {
    let out = home.mcpshare(&["console"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let rest = url
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("not a loopback URL: {url}"));
    let (port, rest) = rest.split_once('/').unwrap();
    let code = rest
        .strip_prefix("console#code=")
        .unwrap_or_else(|| panic!("no code in the fragment: {url}"));
    assert!(!url.contains('?'), "a query string in {url}");
    (port.parse().unwrap(), code.to_string())
}

fn login_with(port: u16, code: &str) -> Answer {
    let origin = format!("http://127.0.0.1:{port}");
    raw(
        port,
        "POST",
        "/console/login",
        &[("Origin", &origin), ("Content-Type", "application/json")],
        &json!({"code": code}).to_string(),
    )
}

fn login(home: &TestHome) -> Page {
    let (port, code) = console_url(home);
    let a = login_with(port, &code);
    assert_eq!(a.status, 200, "{}", a.body);
    let set = a.header("Set-Cookie").expect("a cookie");
    let cookie = set.split(';').next().unwrap().trim().to_string();
    Page {
        port,
        cookie,
        csrf: a.json()["csrf"].as_str().unwrap().to_string(),
    }
}

#[test]
fn the_printed_url_logs_in_once_for_an_httponly_strict_cookie() {
    let home = TestHome::new("console-login");
    let (port, code) = console_url(&home);
    let page = raw(port, "GET", "/console", &[], "");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<script src=\"/console/app.js\""));
    let csp = page.header("Content-Security-Policy").unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(
        page.header("X-Content-Type-Options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(page.header("X-Frame-Options").as_deref(), Some("DENY"));
    for (path, kind) in [
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
    ] {
        let a = raw(port, "GET", path, &[], "");
        assert_eq!(a.status, 200, "{path}");
        assert!(
            a.header("Content-Type").unwrap().starts_with(kind),
            "{path}"
        );
        assert_eq!(
            a.header("X-Content-Type-Options").as_deref(),
            Some("nosniff")
        );
    }

    let a = login_with(port, &code);
    assert_eq!(a.status, 200, "{}", a.body);
    let set = a.header("Set-Cookie").unwrap();
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=43200",
    ] {
        assert!(set.contains(part), "{part} missing from {set}");
    }
    assert!(
        set.starts_with(&format!("mcpshare_console_{port}=")),
        "{set}"
    );
    assert!(a.json()["csrf"].as_str().is_some_and(|t| t.len() == 64));

    // Replayed: the code is spent.
    let again = login_with(port, &code);
    assert_eq!(again.status, 401, "{}", again.body);
    assert!(again.header("Set-Cookie").is_none());
    // Never issued.
    assert_eq!(login_with(port, &"0".repeat(64)).status, 401);
    // No code in a query string, even a right one.
    let (_, fresh) = console_url(&home);
    let q = raw(port, "GET", &format!("/console?code={fresh}"), &[], "");
    assert_eq!(q.status, 400, "{}", q.body);
    assert_eq!(
        login_with(port, &fresh).status,
        200,
        "the fresh code was spent"
    );
}

#[test]
fn every_state_changing_request_needs_cookie_csrf_and_same_origin() {
    let home = TestHome::new("console-csrf");
    let p = login(&home);
    let path = "/console/api/servers/nosuch/restart";
    // All present: past the checks, to the route (no such server).
    assert_eq!(p.post(path, &[]).status, 404);
    let missing_csrf = p.post(path, &[("X-CSRF-Token", "")]);
    assert_eq!(missing_csrf.status, 401, "{}", missing_csrf.body);
    assert!(missing_csrf.body.contains("X-CSRF-Token"));
    assert_eq!(
        p.post(path, &[("X-CSRF-Token", &"f".repeat(64))]).status,
        401
    );
    assert_eq!(p.post(path, &[("Cookie", "")]).status, 401);
    let foreign = p.post(path, &[("Origin", "http://evil.example")]);
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    // Another loopback port is another origin.
    let other = format!("http://127.0.0.1:{}", p.port.wrapping_add(1));
    assert_eq!(p.post(path, &[("Origin", &other)]).status, 403);
    assert_eq!(p.post(path, &[("Origin", "")]).status, 403);
    // Nor does the console's cookie open the bearer-token API.
    let api = raw(p.port, "GET", "/api/status", &[("Cookie", &p.cookie)], "");
    assert_eq!(api.status, 401);
    // Logged out, the cookie is worth nothing.
    assert_eq!(p.post("/console/api/logout", &[]).status, 200);
    assert_eq!(p.post(path, &[]).status, 401);
}

#[test]
fn a_dns_rebinding_host_is_refused() {
    let home = TestHome::new("console-host");
    let p = login(&home);
    let port = p.port.to_string();
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1:{}", p.port.wrapping_add(1)),
        "127.0.0.1".to_string(),
    ] {
        let a = raw(p.port, "GET", "/console", &[("Host", &host)], "");
        assert_eq!(a.status, 403, "Host {host}");
        let a = raw(
            p.port,
            "GET",
            "/console/api/whoami",
            &[("Host", &host), ("Cookie", &p.cookie)],
            "",
        );
        assert_eq!(a.status, 403, "Host {host}");
    }
    let ok = raw(
        p.port,
        "GET",
        "/console/api/whoami",
        &[("Cookie", &p.cookie)],
        "",
    );
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["csrf"].as_str(), Some(p.csrf.as_str()));
}

#[test]
fn a_cookie_from_another_daemon_start_is_refused() {
    let home = TestHome::new("console-restart");
    let old = login(&home);
    let pid = home.daemon_pid().unwrap();
    assert!(home.mcpshare(&["stop"]).status.success());
    assert!(wait_until(WAIT, || !pid_alive(pid)));
    let new = login(&home);
    let value = old.cookie.split_once('=').unwrap().1;
    let name = new.cookie.split_once('=').unwrap().0;
    let stale = Page {
        port: new.port,
        cookie: format!("{name}={value}"),
        csrf: old.csrf.clone(),
    };
    let a = stale.post("/console/api/servers/nosuch/restart", &[]);
    assert_eq!(a.status, 401, "{}", a.body);
    assert!(
        a.body.contains("not from this daemon's start"),
        "{}",
        a.body
    );
    assert_eq!(
        new.post("/console/api/servers/nosuch/restart", &[]).status,
        404
    );
}

/// The live feed, read event by event off a raw connection.
struct Feed {
    lines: BufReader<TcpStream>,
}

impl Feed {
    fn open(p: &Page) -> Feed {
        let mut s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        write!(
            s,
            "GET /console/api/feed HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nCookie: {}\r\n\r\n",
            p.port, p.cookie
        )
        .unwrap();
        Feed {
            lines: BufReader::new(s),
        }
    }

    /// The next event that satisfies `pred`, within `timeout`.
    fn until(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        let mut line = String::new();
        while Instant::now() < deadline {
            match self.lines.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) if line.ends_with('\n') => {
                    let event = line
                        .strip_prefix("data: ")
                        .and_then(|d| serde_json::from_str::<Value>(d.trim()).ok());
                    line.clear();
                    if let Some(e) = event.filter(|e| pred(e)) {
                        return Some(e);
                    }
                }
                _ => {}
            }
        }
        None
    }
}

#[test]
fn the_feed_shows_servers_sessions_logs_and_reports_and_the_actions_act() {
    let home = TestHome::new("console-feed");
    let (mut bridge, up_pid) = home.client();
    let p = login(&home);
    let mut feed = Feed::open(&p);
    let bridge_pid = bridge.pid();
    let st = feed
        .until(WAIT, |e| {
            e["kind"] == "state" && e["sessions"].as_array().is_some_and(|s| !s.is_empty())
        })
        .expect("a state with the session");
    let up = &st["upstreams"][0];
    assert_eq!(up["pid"], json!(up_pid));
    assert_eq!(up["state"], "running");
    assert!(st["daemon"]["uptime_s"].is_u64() && st["daemon"]["pid"].is_u64());
    assert!(up["rss_bytes"].as_u64().is_some_and(|b| b > 0), "{up}");
    let id = up["id"].as_str().unwrap().to_string();
    let session = &st["sessions"][0];
    assert_eq!(session["bridge_pid"], json!(bridge_pid));
    assert_eq!(session["upstream"], json!(id));
    let sid = session["id"].as_str().unwrap().to_string();
    let log = feed
        .until(WAIT, |e| e["kind"] == "log" && e["id"] == json!(id))
        .expect("the upstream's log tail");
    assert!(
        log.to_string()
            .contains(&format!("fixture pid {up_pid} started")),
        "{log}"
    );
    assert!(feed.until(WAIT, |e| e["kind"] == "doctor").is_some());

    // A bridge's report shows beside its session, live.
    let m = home.manifest().unwrap();
    let bearer = format!("Bearer {}", m["token"].as_str().unwrap());
    let report = json!({"pid": bridge_pid, "kind": "error", "message": "request timed out"});
    let a = raw(
        p.port,
        "POST",
        "/api/events",
        &[("Authorization", &bearer)],
        &report.to_string(),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    let shown = feed
        .until(WAIT, |e| {
            let events = e["sessions"][0]["events"].as_array();
            e["kind"] == "state"
                && events.is_some_and(|ev| ev.iter().any(|e| e["message"] == "request timed out"))
        })
        .is_some();
    assert!(shown, "the report never reached the feed");

    // Restart: a new pid, and its start line arrives in the log.
    let a = p.post(&format!("/console/api/servers/{id}/restart"), &[]);
    assert_eq!(a.status, 200, "{}", a.body);
    let new_pid = a.json()["pid"].as_u64().unwrap() as u32;
    assert_ne!(new_pid, up_pid);
    home.seen_upstreams.lock().unwrap().push(new_pid);
    let started = format!("fixture pid {new_pid} started");
    assert!(
        feed.until(WAIT, |e| e["kind"] == "log"
            && e.to_string().contains(&started))
            .is_some(),
        "the restarted server's first line never arrived"
    );

    // Ending the session stops its bridge (pid and start time confirmed).
    let a = p.post(&format!("/console/api/sessions/{sid}/end"), &[]);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["signalled"], json!(bridge_pid));
    assert!(
        bridge.wait_exit(WAIT).is_some(),
        "the bridge outlived its session"
    );

    // Unknown actions and unsupported ones say so.
    assert_eq!(
        p.post(&format!("/console/api/servers/{id}/explode"), &[])
            .status,
        404
    );
    // Only configured servers are enabled or disabled.
    assert_eq!(
        p.post(&format!("/console/api/servers/{id}/disable"), &[])
            .status,
        404
    );

    // Stop the daemon from the page.
    let daemon = home.daemon_pid().unwrap();
    assert_eq!(p.post("/console/api/daemon/stop", &[]).status, 202);
    assert!(
        wait_until(WAIT, || !pid_alive(daemon)),
        "the daemon outlived its stop"
    );
}

#[test]
fn stopping_a_server_from_the_page_stops_its_child() {
    let home = TestHome::new("console-stop-server");
    let (_bridge, up_pid) = home.client();
    let p = login(&home);
    let id = home.status()["upstreams"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a = p.post(&format!("/console/api/servers/{id}/stop"), &[]);
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        wait_until(WAIT, || !pid_alive(up_pid)),
        "the server outlived its stop"
    );
    assert_eq!(home.status()["upstreams"][0]["pid"], Value::Null);
}

#[test]
fn disabling_a_configured_server_from_the_page_edits_the_config_and_stops_it() {
    let home = TestHome::new("console-disable");
    home.write_config(json!({"fx": {"command": fixture().display().to_string(), "keep": 1}}));
    let (_bridge, up_pid) = home.named_client("fx");
    let p = login(&home);
    let id = home.status()["upstreams"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a = p.post(&format!("/console/api/servers/{id}/disable"), &[]);
    assert_eq!(a.status, 200, "{}", a.body);
    let text = std::fs::read_to_string(home.config_path()).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["mcpServers"]["fx"]["mcpshare"]["enabled"],
        json!(false),
        "{text}"
    );
    assert_eq!(
        v["mcpServers"]["fx"]["keep"],
        json!(1),
        "other keys are kept"
    );
    assert!(
        wait_until(WAIT, || !pid_alive(up_pid)),
        "the disabled server outlived the change"
    );
    let state = || home.status()["config"]["servers"][0]["state"].clone();
    assert!(wait_until(WAIT, || state() == "disabled"), "{}", state());
}

#[test]
fn bridge_reports_need_the_bearer_token_and_are_bounded() {
    let home = TestHome::new("console-events");
    let (port, _) = console_url(&home);
    let m = home.manifest().unwrap();
    let bearer = format!("Bearer {}", m["token"].as_str().unwrap());
    let auth = [("Authorization", bearer.as_str())];
    let good = json!({"pid": 4242, "kind": "started", "client_name": "c", "client_version": "1"});
    assert_eq!(
        raw(port, "POST", "/api/events", &[], &good.to_string()).status,
        401
    );
    assert_eq!(
        raw(port, "POST", "/api/events", &auth, &good.to_string()).status,
        202
    );
    let bad = json!({"pid": 4242, "kind": "gossip"});
    assert_eq!(
        raw(port, "POST", "/api/events", &auth, &bad.to_string()).status,
        400
    );
    let huge = json!({"pid": 4242, "kind": "error", "message": "x".repeat(9000)});
    let a = raw(port, "POST", "/api/events", &auth, &huge.to_string());
    assert_eq!(a.status, 413, "{}", a.body);
    // The login-code route is the bearer token's too.
    assert_eq!(raw(port, "POST", "/api/console/code", &[], "").status, 401);
}

#[test]
fn each_bridge_reports_its_start_its_errors_and_its_stop_beside_its_session() {
    let home = TestHome::new("console-bridge-reports");
    let (mut bridge, _) = home.client();
    let pid = json!(bridge.pid());
    let p = login(&home);
    let mut feed = Feed::open(&p);
    let st = feed
        .until(WAIT, |e| {
            e["kind"] == "state" && e["sessions"][0]["events"][0]["kind"] == "started"
        })
        .expect("the bridge's start beside its session");
    let s = &st["sessions"][0];
    assert_eq!(s["bridge_pid"], pid);
    assert_eq!(s["client_name"], "mcpshare-test");
    assert_eq!(s["client_version"], "1");
    let cwd = std::env::current_dir().unwrap().display().to_string();
    assert_eq!(s["events"][0]["cwd"], json!(cwd));

    // The daemon dies under a call: the bridge answers its client with an
    // error, re-attaches to a new daemon, and tells that one both.
    home.sleep_in_flight(&mut bridge, json!("in-flight"), 30_000);
    let daemon = home.daemon_pid().unwrap();
    signal(daemon, libc::SIGKILL);
    let lost = bridge.response(&json!("in-flight"), WAIT);
    let lost = lost["error"]["message"]
        .as_str()
        .expect("an error")
        .to_string();
    assert!(wait_until(WAIT, || !pid_alive(daemon)));
    assert!(bridge.call_text(json!(2), "echo", json!({"text": "hi"})) == "hi");
    let p = login(&home);
    let mut feed = Feed::open(&p);
    let st = feed
        .until(WAIT, |e| {
            e["kind"] == "state"
                && e["sessions"][0]["events"].as_array().is_some_and(|ev| {
                    ev.iter().any(|e| {
                        e["message"]
                            .as_str()
                            .is_some_and(|m| m.starts_with("re-attached"))
                    })
                })
        })
        .expect("the re-attach beside the new session");
    let events = st["sessions"][0]["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "error" && e["message"] == json!(lost)),
        "the error the client got is not reported: {events:?}"
    );

    // Its stop, once its session is gone, shows among the bridges.
    bridge.close_stdin();
    assert!(bridge.wait_exit(WAIT).is_some());
    let st = feed.until(WAIT, |e| {
        e["kind"] == "state"
            && e["bridges"].as_array().is_some_and(|b| {
                b.iter().any(|b| {
                    b["pid"] == pid
                        && b["events"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|e| e["kind"] == "stopped")
                })
            })
    });
    assert!(st.is_some(), "the bridge's stop never showed");
}

#[test]
fn a_hub_clients_sessions_show_their_hub_and_profile() {
    let home = TestHome::new("console-hub");
    let path = home.config_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let config = json!({
        "mcpServers": {"fx": {"command": fixture().display().to_string()}},
        "profiles": {"work": {"servers": ["fx"]}}
    });
    std::fs::write(&path, config.to_string()).unwrap();
    let mut c = home.cmd();
    c.args(["mcp", "--profile", "work"]);
    let mut hub = Bridge::spawn(c);
    hub.initialize();
    let pid: u32 = hub
        .call_text(json!(1), "fx__pid", json!({}))
        .parse()
        .unwrap();
    home.seen_upstreams.lock().unwrap().push(pid);
    let p = login(&home);
    let mut feed = Feed::open(&p);
    let state = feed.until(WAIT, |e| {
        e["kind"] == "state"
            && e["sessions"].as_array().is_some_and(|s| {
                s.iter().any(|s| {
                    s["hub"]
                        .as_str()
                        .is_some_and(|h| h.ends_with("profile work"))
                })
            })
    });
    assert!(state.is_some(), "no session named its hub and profile");
}
