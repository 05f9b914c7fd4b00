//! What differs between installs and platforms: a daemon whose binary was
//! replaced under it (`make install` renames a new file over the old one).
//! Linux only: the premise is read from `/proc/PID/exe`.
#![cfg(target_os = "linux")]

use crate::common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};

/// Put a fresh copy of the built binary at `to` the way `make install`
/// does: write a temp file beside it, then rename it over the old one.
fn install_over(to: &Path) {
    let tmp = to.with_file_name(".mcpshare.tmp");
    std::fs::copy(BIN, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

#[test]
fn stop_force_stops_a_daemon_whose_binary_was_reinstalled() {
    let home = TestHome::new("reinstalled");
    let bin_dir = home.dir.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let installed = bin_dir.join("mcpshare");
    install_over(&installed);

    // A client of the installed copy starts the daemon from that copy.
    let mut c = Command::new(&installed);
    c.env("MCPSHARE_HOME", &home.dir)
        .arg("run")
        .arg("--")
        .arg(fixture());
    let mut b = Bridge::spawn(c);
    b.initialize();
    let up = b.upstream_pid(json!("upstream-pid"));
    home.seen_upstreams.lock().unwrap().push(up);
    let daemon = home.daemon_pid().unwrap();
    let manifest = home.manifest().unwrap();
    assert_eq!(
        manifest["exe"],
        json!(installed.display().to_string()),
        "{manifest}"
    );
    b.close_stdin();
    assert!(b.wait_exit(WAIT).is_some(), "the bridge did not exit");

    install_over(&installed);
    // The premise: the kernel now names the daemon's executable as deleted.
    let link = std::fs::read_link(format!("/proc/{daemon}/exe")).unwrap();
    assert_eq!(
        link.display().to_string(),
        format!("{} (deleted)", installed.display())
    );

    // doctor does not call the reinstalled daemon another executable.
    let run = |args: &[&str]| {
        let mut c = Command::new(&installed);
        c.env("MCPSHARE_HOME", &home.dir)
            .args(args)
            .stdin(Stdio::null());
        run_bounded(c, WAIT)
    };
    let out = run(&["doctor", "processes", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let seen = all
        .iter()
        .find(|r| r["record"]["pid"] == json!(daemon))
        .unwrap_or_else(|| panic!("no record of daemon pid {daemon}: {all:?}"));
    assert_eq!(seen["alive"], json!(true), "{seen}");
    assert_eq!(seen["executable_match"], json!(true), "{seen}");

    let out = run(&["stop", "--force"]);
    assert!(
        out.status.success(),
        "stop --force refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wait_until(WAIT, || !pid_alive(daemon)),
        "daemon pid {daemon} outlived stop --force"
    );
    assert!(
        wait_until(WAIT, || !pid_alive(up)),
        "upstream pid {up} outlived its daemon"
    );
}
