//! What the daemon takes from whoever starts it (environment, directory,
//! settings), and that it never waits on a client without a deadline.

use crate::common::*;
use serde_json::json;
use std::path::Path;

/// The NAME=VALUE strings of a process's environment.
fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap()
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

#[test]
fn a_daemon_started_by_a_client_keeps_neither_its_secrets_nor_its_directory() {
    let home = TestHome::new("daemonenv");
    let mut b = home.bridge_with(&[], &[("SECRET_TOKEN", "s3cret-of-this-client")]);
    b.initialize();
    let pid = home.daemon_pid().expect("a daemon");
    let vars = environ(pid);
    assert!(
        !vars.iter().any(|v| v.starts_with("SECRET_TOKEN=")),
        "the daemon inherited the client's secret: {vars:?}"
    );
    // What it needs does get there: the home it serves, and PATH.
    let dir = home.dir.canonicalize().unwrap();
    assert!(
        vars.contains(&format!("MCPSHARE_HOME={}", dir.display())),
        "{vars:?}"
    );
    assert!(vars.iter().any(|v| v.starts_with("PATH=")), "{vars:?}");
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        Path::new("/"),
        "the daemon kept the directory of the client that started it"
    );
    // The upstream still runs with its own client's environment.
    assert_eq!(
        b.call_text(json!(1), "env", json!({"name": "SECRET_TOKEN"})),
        "s3cret-of-this-client"
    );
}

#[test]
fn bad_daemon_settings_are_refused_naming_the_variable_and_value() {
    let home = TestHome::new("badsettings");
    for (var, value) in [
        ("MCPSHARE_REQUEST_TIMEOUT_SECS", "abc"),
        ("MCPSHARE_REQUEST_TIMEOUT_SECS", "-5"),
        ("MCPSHARE_REQUEST_TIMEOUT_SECS", "99999999999999999999"),
        ("MCPSHARE_REQUEST_TIMEOUT_SECS", "0"),
        ("MCPSHARE_START_TIMEOUT_SECS", "1e3"),
        ("MCPSHARE_PING_EVERY_MS", "-1"),
        ("MCPSHARE_UPSTREAM_IDLE_MS", "1.5"),
        ("MCPSHARE_DAEMON_IDLE_SECS", "99999999"),
        ("MCPSHARE_MAX_MESSAGE_BYTES", "10"),
    ] {
        let mut c = home.cmd();
        c.arg("daemon")
            .env(var, value)
            .stdin(std::process::Stdio::null());
        let out = run_bounded(c, WAIT);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {err}");
        assert!(
            err.starts_with("mcpshare: ") && err.contains(&format!("{var}={value}")),
            "{var}={value}: {err}"
        );
        assert!(home.manifest().is_none(), "{var}={value} started a daemon");
    }

    // A client that would start the daemon with a bad value says why on stderr.
    let mut b = home.bridge_with(&[], &[("MCPSHARE_REQUEST_TIMEOUT_SECS", "abc")]);
    let msg = b.initialize_error();
    assert!(msg.contains("MCPSHARE_REQUEST_TIMEOUT_SECS=abc"), "{msg}");
    assert!(
        wait_until(WAIT, || b
            .stderr
            .lock()
            .unwrap()
            .contains("MCPSHARE_REQUEST_TIMEOUT_SECS=abc")),
        "stderr: {}",
        b.stderr.lock().unwrap()
    );
    assert!(home.manifest().is_none(), "a daemon started anyway");
}
