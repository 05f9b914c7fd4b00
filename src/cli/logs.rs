//! `mcpshare logs`: an upstream's standard error, from the daemon, or from
//! its file when the daemon no longer runs it; `-f` follows. A configured
//! server's name stands for its one running upstream. It only reads.

use super::target::{Target, configured, daemon_status, target};
use crate::error::{Error, Result};
use crate::net::client::Client;
use crate::state::home::Home;
use serde_json::Value;
use std::time::Duration;

pub(super) fn logs(home: &Home, arg: &str, n: u64, follow: bool) -> Result<i32> {
    use std::io::Write;
    let daemon = daemon_status(home)?;
    let id = match &daemon {
        Some((_, st)) => match target(st, arg) {
            Target::Upstream => arg.to_string(),
            Target::Server { upstreams, state } => match upstreams.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(Error::Daemon(format!(
                        "server {arg} has no upstream running ({state}); its log starts when it does"
                    )));
                }
                many => {
                    // Per-cwd and per-client servers: one log each.
                    return Err(Error::Usage(format!(
                        "server {arg} runs {} upstreams: {}; give one of these ids",
                        many.len(),
                        many.join(", ")
                    )));
                }
            },
        },
        None if !home.upstream_log(arg).exists() && configured(arg) => {
            return Err(Error::Daemon(format!(
                "server {arg} is not running (no daemon runs for {}); its log starts when it does",
                home.dir().display()
            )));
        }
        None => arg.to_string(),
    };
    let id = id.as_str();
    let client = daemon.as_ref().map(|(m, _)| Client::new(m));
    let first = match &client {
        Some(c) => c
            .call(
                "GET",
                &format!("/api/logs/{id}?n={n}"),
                None,
                Duration::from_secs(5),
            )
            .map_err(|e| Error::Daemon(format!("daemon: {e}")))?,
        None => (404, Value::Null),
    };
    let (code, body) = first;
    if code == 404 {
        // The daemon does not know it (stopped for idleness, or no daemon): read the file.
        let path = home.upstream_log(id);
        if !path.exists() {
            return Err(Error::Daemon(format!(
                "no upstream {id}: {} does not exist",
                path.display()
            )));
        }
        if follow {
            return Err(Error::Daemon(format!(
                "upstream {id} is not running; -f needs it running"
            )));
        }
        for line in crate::supervisor::logbook::file_tail(&path, n as usize) {
            println!("{line}");
        }
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    // Follow from the newest line, also when none was printed (`-n 0`).
    let mut last = print_lines(&mut out, &body)?.max(body["last"].as_u64().unwrap_or(0));
    let Some(client) = client.filter(|_| follow) else {
        return Ok(0);
    };
    loop {
        let path = format!("/api/logs/{id}?after={last}&wait_ms=10000");
        match client.call("GET", &path, None, Duration::from_secs(15)) {
            Ok((200, body)) => last = print_lines(&mut out, &body)?.max(last),
            // The daemon or the upstream went away: the log ends here.
            _ => return Ok(0),
        }
        let _ = out.flush();
    }
}

/// Print the lines of a logs answer; returns the number of the last one.
fn print_lines(out: &mut impl std::io::Write, body: &Value) -> Result<u64> {
    let mut last = 0;
    for l in body["lines"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "{}", l["text"].as_str().unwrap_or(""));
        last = l["n"].as_u64().unwrap_or(last);
    }
    Ok(last)
}
