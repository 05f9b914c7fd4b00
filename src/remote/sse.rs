//! The older HTTP+SSE transport: a GET opens the event stream, whose first
//! `endpoint` event names where to POST messages; everything the server
//! sends comes as `message` events on that one stream. The stream is the
//! session: when it ends, this relay exits and the daemon restarts it.

use super::*;
use std::sync::mpsc::channel;

/// How long the server may take to name its endpoint once the stream is open.
const ENDPOINT_WAIT: Duration = Duration::from_secs(30);

pub fn run(remote: &Remote, agent: ureq::Agent) -> i32 {
    let url = &remote.url;
    let mut req = agent.get(url).header("Accept", "text/event-stream");
    for (k, v) in &remote.headers {
        req = req.header(k, v);
    }
    let resp = match req
        .config()
        .timeout_per_read(Some(STREAM_SILENCE))
        .build()
        .call()
    {
        Ok(r) => r,
        Err(e) => {
            say(&format!("cannot open the event stream of {url}: {e}"));
            return 1;
        }
    };
    let status = resp.status().as_u16();
    if status != 200 {
        say(&status_error(url, status, resp.into_body().into_reader()));
        return 1;
    }
    let (endpoint_tx, endpoint_rx) = channel::<String>();
    let body = resp.into_body().into_reader();
    let stream_url = url.clone();
    let spawned = std::thread::Builder::new()
        .name("remote-stream".into())
        .spawn(move || {
            let mut endpoint = Some(endpoint_tx);
            let mut events = Events::new(body);
            let why = loop {
                match events.next() {
                    Ok(None) => break "it ended".to_string(),
                    Err(e) => break e.to_string(),
                    Ok(Some(ev)) if ev.name == "endpoint" => match endpoint.take() {
                        Some(tx) => {
                            let _ = tx.send(ev.data);
                        }
                        None => say("a second endpoint event; the first one is kept"),
                    },
                    Ok(Some(ev)) if ev.name.is_empty() || ev.name == "message" => {
                        if let Some(m) = event_message(&ev.data) {
                            emit(&m);
                        }
                    }
                    Ok(Some(_)) => {}
                }
            };
            say(&format!(
                "the event stream of {stream_url} is lost ({why}): exiting, so that the \
                 daemon starts the connection again"
            ));
            std::process::exit(1);
        });
    if let Err(e) = spawned {
        say(&format!("cannot start the stream's thread: {e}"));
        return 1;
    }
    let endpoint = match endpoint_rx.recv_timeout(ENDPOINT_WAIT) {
        Ok(e) => e,
        Err(_) => {
            say(&format!(
                "the event stream of {url} named no endpoint within {} s",
                ENDPOINT_WAIT.as_secs()
            ));
            return 1;
        }
    };
    let post_url = match resolve(url, endpoint.trim()) {
        Ok(u) => u,
        Err(e) => {
            say(&e);
            return 1;
        }
    };
    say(&format!("connected to {url} (HTTP+SSE)"));
    let mut stdin = Stdin::new();
    while let Some(msg) = stdin.next() {
        let request = matches!(kind(&msg), Kind::Request).then(|| jsonrpc::id(&msg));
        let mut req = agent
            .post(&post_url)
            .header("Content-Type", "application/json");
        for (k, v) in &remote.headers {
            req = req.header(k, v);
        }
        let sent = req
            .config()
            .timeout_global(Some(NOTIFY_TIMEOUT))
            .build()
            .send(msg.to_string());
        let problem = match sent {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(status_error(
                &post_url,
                r.status().as_u16(),
                r.into_body().into_reader(),
            )),
            Err(e) => Some(format!("cannot POST to {post_url}: {e}")),
        };
        if let Some(e) = problem {
            say(&e);
            if let Some(id) = &request {
                fail(id, e);
            }
        }
    }
    0
}

/// The URL of `endpoint` as the stream at `base` names it: an absolute
/// path, a path relative to the stream's, or a full URL of the same
/// origin (the headers go nowhere else).
fn resolve(base: &str, endpoint: &str) -> Result<String, String> {
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let path_at = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let origin = &base[..path_at];
    // Absolute only when it starts with a scheme (`http://…`): a relative
    // endpoint may carry a URL in its query.
    let absolute = endpoint
        .split(['/', '?', '#'])
        .next()
        .is_some_and(|head| head.ends_with(':') && head.len() > 1)
        && endpoint.contains("://");
    if absolute {
        let same = endpoint
            .get(..origin.len())
            .is_some_and(|o| o.eq_ignore_ascii_case(origin))
            && matches!(
                endpoint.as_bytes().get(origin.len()),
                None | Some(b'/' | b'?')
            );
        return if same {
            Ok(endpoint.to_string())
        } else {
            Err(format!(
                "the event stream of {base} names an endpoint of another origin: {endpoint}"
            ))
        };
    }
    if endpoint.starts_with("//") {
        return Err(format!(
            "the event stream of {base} names an endpoint of another origin: {endpoint}"
        ));
    }
    if endpoint.starts_with('/') {
        return Ok(format!("{origin}{endpoint}"));
    }
    let path = base[path_at..].split(['?', '#']).next().unwrap_or("");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    Ok(format!("{origin}{dir}{endpoint}"))
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn an_endpoint_resolves_against_the_stream_url() {
        let base = "http://127.0.0.1:9/mcp/sse?x=1";
        assert_eq!(
            resolve(base, "/messages?sessionId=a").unwrap(),
            "http://127.0.0.1:9/messages?sessionId=a"
        );
        assert_eq!(
            resolve(base, "/messages?cb=http://x").unwrap(),
            "http://127.0.0.1:9/messages?cb=http://x",
            "a URL in the query does not make it absolute"
        );
        assert_eq!(
            resolve(base, "messages?s=b").unwrap(),
            "http://127.0.0.1:9/mcp/messages?s=b"
        );
        assert_eq!(
            resolve("http://h:1", "m").unwrap(),
            "http://h:1/m",
            "a stream URL without a path"
        );
        assert_eq!(
            resolve(base, "http://127.0.0.1:9/m").unwrap(),
            "http://127.0.0.1:9/m"
        );
        for other in ["http://127.0.0.1:99/m", "http://evil/m", "//evil/m"] {
            let e = resolve(base, other).unwrap_err();
            assert!(e.contains("another origin"), "{other}: {e}");
        }
    }
}
