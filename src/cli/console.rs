//! `mcpshare console`: make sure the daemon runs, ask it for a one-time
//! login code, print the console's URL (the code rides in its fragment,
//! never in a query string) and, with `--open`, hand it to the desktop's
//! opener. It never reads or prints the daemon's bearer token.

use super::{CommandDoc, Invocation, control};
use crate::election;
use crate::error::{Error, Result};
use crate::state::home::Home;
use std::time::{Duration, Instant};

pub const DOC: CommandDoc = CommandDoc {
    name: "console",
    synopsis: "mcpshare console [--open]",
    about: "Print the web console's URL (starting the daemon if needed); its login code works once, within a minute",
    options: &[(
        "--open",
        "also open it in the browser (xdg-open, open or start)",
    )],
};

/// How long the daemon may take to mint a login code.
const CODE_TIMEOUT: Duration = Duration::from_secs(5);

pub fn parse(parser: &mut lexopt::Parser) -> Result<Invocation> {
    use lexopt::prelude::*;
    let mut open = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("help") | Short('h') => {
                return Ok(Invocation::Help {
                    command: Some(DOC.name),
                });
            }
            Long("open") => open = true,
            other => return Err(other.unexpected().into()),
        }
    }
    Ok(Invocation::Console { open })
}

pub fn run(home: &Home, open: bool) -> Result<i32> {
    let m = election::ensure_daemon(home, Instant::now() + election::STARTUP_TIMEOUT)?;
    let (code, body) = control(&m, "POST", "/api/console/code", CODE_TIMEOUT)?;
    if code == 404 {
        return Err(Error::Daemon(format!(
            "daemon pid {} (mcpshare {}) has no console\nhint: run 'mcpshare stop', then 'mcpshare console' again",
            m.pid, m.version
        )));
    }
    let url = match (code, body["url"].as_str()) {
        (200, Some(url)) => url.to_string(),
        _ => {
            return Err(Error::Daemon(format!(
                "daemon pid {} gave no console URL (HTTP {code}): {}",
                m.pid,
                body["error"].as_str().unwrap_or("no error given")
            )));
        }
    };
    println!("{url}");
    eprintln!(
        "mcpshare: this URL logs in once, within {} s; run 'mcpshare console' again for another",
        body["expires_in_s"].as_u64().unwrap_or(60)
    );
    if open {
        open_in_browser(&url)?;
    }
    Ok(0)
}

/// The desktop's own opener for `url`, started and not waited for.
fn open_in_browser(url: &str) -> Result<()> {
    let (program, args): (&str, Vec<&str>) = if cfg!(windows) {
        ("cmd", vec!["/C", "start", "", url])
    } else if cfg!(target_os = "macos") {
        ("open", vec![url])
    } else {
        ("xdg-open", vec![url])
    };
    std::process::Command::new(program)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| {
            Error::Daemon(format!(
                "cannot run {program} to open the console: {e}\nhint: open the URL above in a browser"
            ))
        })
}
