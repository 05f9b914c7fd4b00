//! The web console: one page, embedded in the binary, served over the
//! daemon's own HTTP server. It owns its credentials (one-time codes,
//! cookies, CSRF tokens; see [`auth`]), its own Host/Origin checks, the
//! live feed, and the rings of what each bridge reported ([`events`]).
//! It never imports the daemon: the daemon lends it a [`Backend`]. It
//! never reads a secret from a query string, and it signals a bridge only
//! once that bridge's pid and start time are confirmed.

pub mod auth;
pub mod events;
mod feed;
pub mod report;

use crate::net::http::{self, Refusal, Request};
use crate::platform::ProcessId;
use crate::pool::lock;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const ICON_SVG: &str = include_str!("assets/icon.svg");

/// Largest body of a console request (login, actions), in bytes.
const MAX_PAGE_BODY: usize = 4 * 1024;
/// Live feeds open at once, at most.
const MAX_FEEDS: usize = 8;
/// Where the page lives; everything the browser talks to is below it.
pub const PAGE_PATH: &str = "/console";

/// Every page response carries these: no framing, no inline or foreign
/// script, no sniffing, nothing cached, no referrer.
const PAGE_HEADERS: [(&str, &str); 5] = [
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
];

/// The doctor's findings for a home, as `mcpshare doctor --json` prints
/// them: lent by the CLI, since the doctor sits above the daemon.
pub type DoctorFn = fn(&crate::state::home::Home) -> Value;

/// A session as the console shows it.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub id: String,
    pub upstream: String,
    pub client_name: Option<String>,
    /// The MCP protocol version it negotiated.
    pub protocol: String,
    /// Its bridge, when one opened it.
    pub bridge: Option<ProcessId>,
    pub cwd: String,
    /// For a session a hub session holds on one of its servers: the hub,
    /// with its profile when it has one.
    pub hub: Option<String>,
}

/// Why the daemon could not do what the console asked.
#[derive(Debug)]
pub enum Failure {
    NotFound(String),
    Failed(String),
    Unsupported(String),
}

/// What the console needs of the daemon, implemented by the daemon.
pub trait Backend: Send + Sync {
    /// The daemon's status, as `mcpshare status --json` prints it.
    fn status(&self) -> Value;
    fn sessions(&self) -> Vec<SessionInfo>;
    /// Upstream `id`'s last `n` log lines, or those after line `after`;
    /// None when there is no such upstream.
    fn log_lines(&self, id: &str, n: usize, after: Option<u64>) -> Option<Vec<(u64, String)>>;
    /// Restart upstream `id`; its new pid.
    fn restart(&self, id: &str) -> Result<Option<u32>, Failure>;
    /// Stop upstream `id`'s child (a later request starts it again).
    fn stop_server(&self, id: &str) -> Result<(), Failure>;
    fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), Failure> {
        let _ = (id, enabled);
        Err(Failure::Unsupported(
            "enabling and disabling needs servers from the config file, which this daemon has not"
                .into(),
        ))
    }
    fn end_session(&self, id: &str, reason: &str);
    fn stop_daemon(&self, reason: &str);
    /// The doctor's findings, as `mcpshare doctor --json` prints them.
    fn doctor(&self) -> Value;
    fn is_stopping(&self) -> bool;
}

/// The console's state in a daemon: credentials and bridge reports.
pub struct Console {
    port: u16,
    auth: Mutex<auth::Auth>,
    rings: Mutex<events::Rings>,
    /// Rung when a bridge reports, so feeds show it at once.
    reported: Condvar,
    feeds: AtomicUsize,
}

impl Console {
    pub fn new(port: u16) -> Console {
        Console {
            port,
            auth: Mutex::new(auth::Auth::default()),
            rings: Mutex::new(events::Rings::default()),
            reported: Condvar::new(),
            feeds: AtomicUsize::new(0),
        }
    }

    fn cookie_name(&self) -> String {
        // Cookies are per host, not per port: two daemons (two homes)
        // must not overwrite each other's.
        format!("mcpshare_console_{}", self.port)
    }

    /// A fresh one-time login code and the URL that carries it.
    pub fn mint_code(&self) -> std::io::Result<(String, String)> {
        let code = auth::secret()?;
        lock(&self.auth).add_code(code.clone(), Instant::now());
        let url = format!("http://127.0.0.1:{}{PAGE_PATH}#code={code}", self.port);
        Ok((code, url))
    }

    /// Is a console page watching (its live feed open)?
    pub fn watched(&self) -> bool {
        self.feeds.load(Ordering::Acquire) > 0
    }

    pub fn record(&self, report: events::Report) {
        lock(&self.rings).push(report, crate::log::unix_millis());
        self.reported.notify_all();
    }
}

/// Is `path` the page or below it? Those requests carry no bearer token:
/// [`refuse`] checks them instead.
pub fn is_page(path: &str) -> bool {
    path == PAGE_PATH || path.starts_with("/console/")
}

/// Is `path` a route of this module (the page, or its bearer-token API)?
pub fn owns(path: &str) -> bool {
    is_page(path) || path == "/api/events" || path.starts_with("/api/console/")
}

fn refusal(status: u16, body: &str) -> Refusal {
    Refusal {
        status,
        content_type: "text/plain",
        body: format!("{body}\n").into_bytes(),
        headers: PAGE_HEADERS
            .iter()
            .map(|(k, v)| (*k, v.to_string()))
            .collect(),
    }
}

/// The Origin of a page served to this Host: what a same-origin request
/// must carry.
fn same_origin(req: &Request) -> Option<String> {
    Some(format!(
        "http://{}",
        req.header("Host")?.to_ascii_lowercase()
    ))
}

/// The checks of a page request by its head, before its body is read:
/// Host is loopback with our port (DNS rebinding), Origin when present is
/// this very origin (and is required on anything but GET), no query
/// string (no secret may travel in one), a small declared body.
pub fn refuse(req: &Request, port: u16) -> Option<Refusal> {
    if !http::host_ok(req, port) {
        return Some(refusal(
            403,
            "forbidden: Host must be 127.0.0.1, localhost or [::1] with the daemon's port",
        ));
    }
    let origin = req.header("Origin").map(str::to_ascii_lowercase);
    match (&origin, req.method()) {
        (Some(o), _) if Some(o) != same_origin(req).as_ref() => {
            return Some(refusal(403, "forbidden: foreign Origin"));
        }
        (None, m) if m != "GET" => {
            return Some(refusal(403, "forbidden: Origin is required"));
        }
        _ => {}
    }
    if req.url().contains('?') {
        return Some(refusal(
            400,
            "the console takes no query string (secrets never travel in one)",
        ));
    }
    refuse_body(req, MAX_PAGE_BODY)
}

/// The checks of this module's bearer-token routes, after the token
/// passed: a small declared body.
pub fn refuse_api(req: &Request, path: &str) -> Option<Refusal> {
    if path == "/api/events" || path.starts_with("/api/console/") {
        return refuse_body(req, events::MAX_EVENT_BODY);
    }
    None
}

fn refuse_body(req: &Request, max: usize) -> Option<Refusal> {
    if req.header("Transfer-Encoding").is_some() {
        return Some(refusal(411, "a Content-Length is required"));
    }
    let len = req
        .header("Content-Length")
        .map(|l| l.trim().parse::<usize>());
    match len {
        Some(Ok(n)) if n > max => Some(refusal(413, &format!("body over {max} bytes"))),
        Some(Err(_)) => Some(refusal(400, "bad Content-Length")),
        _ => None,
    }
}

fn page_json(req: Request, status: u16, body: &Value, extra: &[(&str, &str)]) {
    let mut headers: Vec<(&str, &str)> = PAGE_HEADERS.to_vec();
    headers.extend_from_slice(extra);
    http::json(req, status, body, &headers);
}

fn asset(req: Request, content_type: &str, body: &str) {
    http::bytes(req, 200, content_type, body.as_bytes(), &PAGE_HEADERS);
}

fn error(req: Request, status: u16, message: &str) {
    page_json(req, status, &json!({"error": message}), &[]);
}

/// Answer a request for a path [`owns`] says is ours; it passed
/// [`refuse`] (page) or the bearer token and [`refuse_api`] (API).
pub fn handle(c: &Console, b: &dyn Backend, req: Request) {
    let path = req.url().split('?').next().unwrap_or("").to_string();
    let method = req.method().to_string();
    match (method.as_str(), path.as_str()) {
        ("POST", "/api/console/code") => match c.mint_code() {
            Ok((_, url)) => http::json(
                req,
                200,
                &json!({"url": url, "expires_in_s": auth::CODE_LIFETIME.as_secs()}),
                &[],
            ),
            Err(e) => http::json(
                req,
                500,
                &json!({"error": format!("cannot read random bytes: {e}")}),
                &[],
            ),
        },
        ("POST", "/api/events") => match events::parse(req.body()) {
            Ok(report) => {
                c.record(report);
                http::json(req, 202, &json!({"recorded": true}), &[]);
            }
            Err(e) => http::json(req, 400, &json!({"error": e}), &[]),
        },
        ("GET", "/console") | ("GET", "/console/") => {
            asset(req, "text/html; charset=utf-8", INDEX_HTML)
        }
        ("GET", "/console/app.js") => asset(req, "text/javascript; charset=utf-8", APP_JS),
        ("GET", "/console/app.css") => asset(req, "text/css; charset=utf-8", APP_CSS),
        ("GET", "/console/icon.svg") => asset(req, "image/svg+xml", ICON_SVG),
        ("POST", "/console/login") => login(c, req),
        ("GET", "/console/api/whoami") => match logged_in(c, &req, false) {
            Ok(l) => page_json(req, 200, &json!({"csrf": l.csrf}), &[]),
            Err(r) => error(req, 401, r.message()),
        },
        ("GET", "/console/api/feed") => match logged_in(c, &req, false) {
            Ok(l) => feed::run(c, b, req, l.expires),
            Err(r) => error(req, 401, r.message()),
        },
        ("POST", p) if p.starts_with("/console/api/") => match logged_in(c, &req, true) {
            Ok(l) => act(c, b, req, &p["/console/api/".len()..], &l),
            Err(r) => error(req, 401, r.message()),
        },
        _ => error(req, 404, &format!("no route {method} {path}")),
    }
}

fn logged_in(c: &Console, req: &Request, with_csrf: bool) -> Result<auth::Login, auth::Refused> {
    let name = c.cookie_name();
    let cookie = auth::cookie_value(req.header("Cookie"), &name);
    let a = lock(&c.auth);
    if with_csrf {
        a.login_with_csrf(cookie, req.header("X-CSRF-Token"), Instant::now())
    } else {
        a.login(cookie, Instant::now())
    }
}

fn login(c: &Console, req: Request) {
    let code = serde_json::from_slice::<Value>(req.body())
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_string));
    let Some(code) = code else {
        return error(req, 400, "the body must be {\"code\": \"…\"}");
    };
    let secrets = auth::secret().and_then(|k| Ok((k, auth::secret()?)));
    let Ok((cookie, csrf)) = secrets else {
        return error(req, 500, "cannot read random bytes");
    };
    let redeemed = lock(&c.auth).redeem(&code, Instant::now(), cookie, csrf);
    match redeemed {
        Ok(l) => {
            let set = format!(
                "{}={}; Path={PAGE_PATH}; HttpOnly; SameSite=Strict; Max-Age={}",
                c.cookie_name(),
                l.cookie,
                auth::COOKIE_LIFETIME.as_secs()
            );
            crate::log!("console: a browser logged in");
            page_json(
                req,
                200,
                &json!({"csrf": l.csrf, "expires_in_s": auth::COOKIE_LIFETIME.as_secs()}),
                &[("Set-Cookie", &set)],
            );
        }
        Err(r) => error(req, 401, r.message()),
    }
}

/// An upstream id or session id as the routes carry it.
fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn failed(req: Request, f: Failure) {
    match f {
        Failure::NotFound(m) => error(req, 404, &m),
        Failure::Failed(m) => error(req, 500, &m),
        Failure::Unsupported(m) => error(req, 501, &m),
    }
}

/// A state-changing request from a logged-in page (cookie and CSRF token
/// checked).
fn act(c: &Console, b: &dyn Backend, req: Request, what: &str, l: &auth::Login) {
    let parts: Vec<&str> = what.split('/').collect();
    match parts.as_slice() {
        ["logout"] => {
            lock(&c.auth).logout(&l.cookie);
            let clear = format!(
                "{}=; Path={PAGE_PATH}; HttpOnly; SameSite=Strict; Max-Age=0",
                c.cookie_name()
            );
            page_json(
                req,
                200,
                &json!({"logged_out": true}),
                &[("Set-Cookie", &clear)],
            );
        }
        ["daemon", "stop"] => {
            b.stop_daemon("stop requested from the console");
            page_json(req, 202, &json!({"stopping": true}), &[]);
        }
        ["servers", id, action] if plain_id(id) => {
            crate::log!("console: {action} upstream {id}");
            let done = match *action {
                "restart" => b.restart(id).map(|pid| json!({"id": id, "pid": pid})),
                "stop" => b
                    .stop_server(id)
                    .map(|()| json!({"id": id, "stopped": true})),
                "enable" | "disable" => b
                    .set_enabled(id, *action == "enable")
                    .map(|()| json!({"id": id, "enabled": *action == "enable"})),
                _ => Err(Failure::NotFound(format!(
                    "no action {action} for a server"
                ))),
            };
            match done {
                Ok(v) => page_json(req, 200, &v, &[]),
                Err(f) => failed(req, f),
            }
        }
        ["sessions", id, "end"] if plain_id(id) => match end_session(b, id) {
            Ok(v) => page_json(req, 200, &v, &[]),
            Err(f) => failed(req, f),
        },
        _ => error(req, 404, &format!("no action {what}")),
    }
}

/// End a session; its bridge is signalled only if it is still the very
/// process that opened it (pid, start time, and the mcpshare executable),
/// else only the daemon's side ends.
fn end_session(b: &dyn Backend, id: &str) -> Result<Value, Failure> {
    let s = b
        .sessions()
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| Failure::NotFound(format!("no session {id} in this daemon")))?;
    // A bridge is this mcpshare (the executable that runs the daemon).
    let ours = |pid: u32| {
        let me = crate::platform::exe(std::process::id());
        me.is_some() && crate::platform::exe(pid) == me
    };
    let signalled = match &s.bridge {
        Some(p) if p.start_time != 0 && crate::platform::same_process(p) && ours(p.pid) => {
            crate::platform::signal(p.pid, crate::platform::Signal::Term)
                .map_err(|e| Failure::Failed(format!("cannot signal bridge pid {}: {e}", p.pid)))?;
            crate::log!("console: session {id}: signalled its bridge pid {}", p.pid);
            Some(p.pid)
        }
        _ => None,
    };
    b.end_session(id, "ended from the console");
    Ok(json!({"id": id, "signalled": signalled}))
}
