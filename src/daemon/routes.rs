//! The daemon's one route table: the guard every request passes first
//! (Host, Origin, the bearer token), then `/health`, the MCP endpoints (one
//! per upstream, and the hub), the console, and the control API.

use super::*;

/// Host, Origin and the bearer token, checked on every request by its
/// head alone, before its body is read (see `http::Config::guard`); only
/// `/health` and the console's page (which checks its own cookie, CSRF
/// token and same-origin `Origin`) need no token.
pub(super) fn refuse(req: &http::Request, port: u16, token: &str) -> Option<http::Refusal> {
    let text = |status: u16, body: &str| http::Refusal {
        status,
        content_type: "text/plain",
        body: body.as_bytes().to_vec(),
        headers: Vec::new(),
    };
    if !http::host_ok(req, port) {
        return Some(text(
            403,
            "forbidden: Host must be 127.0.0.1, localhost or [::1] with the daemon's port\n",
        ));
    }
    if !http::origin_ok(req) {
        return Some(text(403, "forbidden: foreign Origin\n"));
    }
    let path = req.url().split('?').next().unwrap_or("");
    if path == "/health" {
        return None;
    }
    if crate::console::is_page(path) {
        return crate::console::refuse(req, port);
    }
    if http::authorized(req, token) {
        return crate::console::refuse_api(req, path);
    }
    Some(http::Refusal {
        status: 401,
        content_type: "application/json",
        body: json!({"error": "missing or wrong bearer token"})
            .to_string()
            .into_bytes(),
        headers: vec![("WWW-Authenticate", "Bearer realm=\"mcpshare\"".to_string())],
    })
}

/// Every request that reached here passed [`refuse`].
pub(super) fn route(d: &Arc<Daemon>, req: http::Request) {
    let path = req.url().split('?').next().unwrap_or("").to_string();
    if path == "/health" {
        let body = json!({"status": "ok", "pid": std::process::id(), "version": version(), "protocol": manifest::PROTOCOL});
        return http::json(req, 200, &body, &[]);
    }
    if path == "/mcp" || path == "/mcp/" || path.starts_with("/mcp/p/") {
        return hub::handle(d, req);
    }
    if let Some(id) = path
        .strip_prefix("/u/")
        .and_then(|r| r.strip_suffix("/mcp"))
    {
        let id = id.to_string();
        return endpoint::handle(d, req, &id);
    }
    if crate::console::owns(&path) {
        return crate::console::handle(&d.console, d.as_ref(), req);
    }
    match (req.method(), path.as_str()) {
        ("POST", "/api/upstreams") if d.is_stopping() => http::json(
            req,
            503,
            &json!({"error": "daemon is shutting down or handing over"}),
            &[],
        ),
        ("POST", "/api/upstreams") if body_names_the_hub(req.body()) => {
            let body = serde_json::from_slice::<Value>(req.body()).unwrap_or(Value::Null);
            match hub::registration(&body) {
                Ok(v) => http::json(req, 200, &v, &[]),
                Err(e) => http::json(req, 400, &json!({"error": e}), &[]),
            }
        }
        ("POST", "/api/upstreams") if body_names_a_server(req.body()) => {
            match serde_json::from_slice::<servers::Ask>(req.body()) {
                Ok(ask) => match d.register_server(&ask) {
                    Ok(up) => http::json(req, 200, &json!({"id": up.id}), &[]),
                    Err(e) => http::json(req, 404, &json!({"error": e}), &[]),
                },
                Err(e) => http::json(
                    req,
                    400,
                    &json!({"error": format!("bad server request: {e}")}),
                    &[],
                ),
            }
        }
        ("POST", "/api/reload") => match d.reload("mcpshare reload") {
            Ok(v) => http::json(req, 200, &v, &[]),
            Err(e) => http::json(req, 422, &json!({"error": e}), &[]),
        },
        ("POST", "/api/upstreams") => match serde_json::from_slice::<Spec>(req.body()) {
            Ok(spec) => {
                let up = d.register(spec);
                http::json(req, 200, &json!({"id": up.id}), &[])
            }
            Err(e) => http::json(
                req,
                400,
                &json!({"error": format!("bad upstream spec: {e}")}),
                &[],
            ),
        },
        ("GET", "/api/status") => http::json(req, 200, &d.status(), &[]),
        ("GET", p) if p.starts_with("/api/logs/") => {
            let id = &p["/api/logs/".len()..];
            let query = req
                .url()
                .split_once('?')
                .map(|(_, q)| q.to_string())
                .unwrap_or_default();
            let param = |k: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            let Some(up) = d.upstream(id) else {
                return unknown_upstream(req, id);
            };
            let wait = Duration::from_millis(param("wait_ms").unwrap_or(0)).min(LOG_WAIT_MAX);
            let lines = up
                .logbook
                .lines(param("n").unwrap_or(100) as usize, param("after"), wait);
            let lines: Vec<Value> = lines
                .into_iter()
                .map(|(n, text)| json!({"n": n, "text": text}))
                .collect();
            http::json(
                req,
                200,
                &json!({"id": id, "log": up.logbook.path().display().to_string(),
                    "last": up.logbook.last(), "lines": lines}),
                &[],
            )
        }
        ("POST", p) if p.starts_with("/api/restart/") => {
            let id = &p["/api/restart/".len()..];
            let Some(up) = d.upstream(id) else {
                return unknown_upstream(req, id);
            };
            log!("upstream {id}: restart requested");
            match up.restart() {
                Ok(_) => http::json(req, 200, &json!({"id": id, "pid": up.pid()}), &[]),
                Err(e) => http::json(req, 500, &json!({"error": e}), &[]),
            }
        }
        ("POST", "/api/handoff") => {
            let theirs = serde_json::from_slice::<Value>(req.body())
                .ok()
                .and_then(|v| v["version"].as_str().map(str::to_string))
                .unwrap_or_default();
            if !version::is_newer(&theirs, &version()) {
                let e = format!(
                    "mcpshare {theirs:?} is not newer than this daemon's {}",
                    version()
                );
                return http::json(req, 409, &json!({"error": e}), &[]);
            }
            http::json(req, 202, &json!({"handing_over": true}), &[]);
            let d = d.clone();
            let _ = std::thread::Builder::new()
                .name("handoff".into())
                .spawn(move || d.hand_over(&theirs));
        }
        ("POST", "/api/stop") => {
            d.request_stop("stop requested by mcpshare stop");
            http::json(req, 202, &json!({"stopping": true}), &[])
        }
        _ => http::json(req, 404, &json!({"error": format!("no route {path}")}), &[]),
    }
}

/// Does a registration ask for the hub (`mcpshare mcp`)?
fn body_names_the_hub(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| v.get("hub").is_some_and(Value::is_object))
}

/// Does a registration ask for a configured server by name (`run NAME`)
/// rather than give a command?
fn body_names_a_server(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .is_ok_and(|v| v.get("server").is_some_and(Value::is_string))
}

fn unknown_upstream(req: http::Request, id: &str) {
    http::json(
        req,
        404,
        &json!({"error": format!("no upstream {id} in this daemon")}),
        &[],
    )
}
