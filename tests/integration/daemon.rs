//! What the daemon takes from whoever starts it (environment, directory,
//! settings), and that it never waits on a client without a deadline.

use crate::common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

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
    // The client app leaks two descriptors to the bridge it starts.
    let leaked = home.dir.join("leaked-by-the-client");
    std::fs::write(&leaked, "").unwrap();
    let mut c = home.cmd();
    c.env("SECRET_TOKEN", "s3cret-of-this-client");
    let mut b = bridge_inheriting(c, None, 2, &leaked);
    b.initialize();
    let pid = home.daemon_pid().expect("a daemon");
    assert_eq!(open_on(b.pid(), &leaked), 2, "the test leaks nothing");
    let upstream = b.upstream_pid(json!(90));
    for (who, pid) in [("daemon", pid), ("upstream", upstream)] {
        assert_eq!(
            open_on(pid, &leaked),
            0,
            "the {who} kept the client's descriptors"
        );
    }
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
        ("MCPSHARE_HEAD_TIMEOUT_MS", "5"),
        ("MCPSHARE_BODY_TIMEOUT_MS", "forever"),
        ("MCPSHARE_LOG_MAX_BYTES", "12"),
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

/// `n` connections to the daemon that each send `sent` and then nothing.
fn stalled_connections(port: u16, n: usize, sent: &str) -> Vec<std::net::TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(sent.as_bytes()).unwrap();
            s
        })
        .collect()
}

/// Read what the daemon sends until it closes the connection, at most
/// until `deadline`; if it is still open then, or the read fails, why.
fn answer_before_close(s: &mut std::net::TcpStream, deadline: Instant) -> Result<String, String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let text = |got: &[u8]| String::from_utf8_lossy(got).into_owned();
    loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return Err(format!(
                "still open at the deadline, after {:?}",
                text(&got)
            ));
        };
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return Ok(text(&got)),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(text(&got)),
            // A timeout before the deadline, or a signal: read on.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(format!("read failed ({e}) after {:?}", text(&got))),
        }
    }
}

#[test]
fn half_sent_requests_are_closed_at_their_deadline_while_others_are_served() {
    const HEAD_MS: u64 = 1000;
    const BODY_MS: u64 = 1000;
    let home = TestHome::new("slowloris");
    let mut b = home.bridge_with(
        &[],
        &[
            ("MCPSHARE_HEAD_TIMEOUT_MS", &HEAD_MS.to_string()),
            ("MCPSHARE_BODY_TIMEOUT_MS", &BODY_MS.to_string()),
        ],
    );
    b.initialize();
    let port = home.manifest().unwrap()["port"].as_u64().unwrap() as u16;
    let opened = Instant::now();
    let mut heads = stalled_connections(
        port,
        20,
        &format!("GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"),
    );
    // With the token: a request without one is refused before its body.
    let token = home.manifest().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut bodies = stalled_connections(
        port,
        2,
        &format!(
            "POST /api/upstreams HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
             Content-Length: 100\r\n\r\n{{\"comm"
        ),
    );
    // One more sends its head a byte at a time, which must not push its
    // deadline back.
    let mut trickle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut writer = trickle.try_clone().unwrap();
    let trickler = std::thread::spawn(move || {
        let head = format!(
            "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Pad: {}",
            "a".repeat(200)
        );
        for byte in head.bytes() {
            if writer.write_all(&[byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });

    // Meanwhile the daemon serves everyone else.
    assert!(home.status()["daemon"]["pid"].is_u64());
    assert_eq!(b.call_text(json!(1), "add", json!({"a": 2, "b": 3})), "5");

    let slack = Duration::from_secs(3);
    for (s, deadline_ms) in heads
        .iter_mut()
        .map(|s| (s, HEAD_MS))
        .chain(bodies.iter_mut().map(|s| (s, HEAD_MS + BODY_MS)))
        .chain(std::iter::once((&mut trickle, HEAD_MS)))
    {
        let by = opened + Duration::from_millis(deadline_ms) + slack;
        let answer = answer_before_close(s, by)
            .unwrap_or_else(|why| panic!("a stalled connection, {:?} in: {why}", opened.elapsed()));
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer:?}");
    }
    trickler.join().unwrap();
}

/// A bridge run by `c` whose daemon (started by it, inheriting both) may
/// open only `limit` descriptors (if given) and is handed `inherited` more open on
/// `path`, as from a client app that leaks its descriptors to the
/// servers it starts.
fn bridge_inheriting(
    mut c: std::process::Command,
    limit: Option<u64>,
    inherited: usize,
    path: &Path,
) -> Bridge {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    c.arg("run").arg("--").arg(fixture());
    // SAFETY: setrlimit and open are async-signal-safe; `path` was made
    // before the fork and is only read.
    #[allow(unsafe_code)]
    unsafe {
        c.pre_exec(move || {
            if let Some(n) = limit {
                let lim = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for _ in 0..inherited {
                // No O_CLOEXEC: the descriptor outlives exec.
                if libc::open(path.as_ptr(), libc::O_RDONLY) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Bridge::spawn(c)
}

/// How many descriptors `pid` has open on `path`.
fn open_on(pid: u32, path: &Path) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target == path)
        .count()
}

#[test]
fn stalled_requests_never_use_up_the_connection_limit() {
    let home = TestHome::new("stalledlimit");
    // 64 descriptors, 12 of them taken by what the client app left open,
    // which the daemon closes: it serves 48 connections at once, three
    // quarters of 64, and accepting never fails for want of descriptors.
    let mut b = bridge_inheriting(home.cmd(), Some(64), 12, Path::new("/dev/null"));
    b.initialize();
    let port = home.manifest().unwrap()["port"].as_u64().unwrap() as u16;
    let head = format!("GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    let opened = Instant::now();
    let mut stalled = stalled_connections(port, 60, &head);
    // Well inside the default 10 s head deadline, `status` (which gives a
    // daemon 3 s to answer /health) gets through.
    let out = home.mcpshare(&["status", "--json"]);
    assert!(
        out.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(b.call_text(json!(1), "add", json!({"a": 2, "b": 3})), "5");
    // Those past the limit are accepted at the latest when the first ones
    // time out, and get their own 10 s then: two head deadlines, plus slack.
    let by = Instant::now() + WAIT + Duration::from_secs(10);
    for (i, s) in stalled.iter_mut().enumerate() {
        let answer = answer_before_close(s, by).unwrap_or_else(|why| {
            panic!("stalled connection {i}, {:?} in: {why}", opened.elapsed())
        });
        assert!(answer.starts_with("HTTP/1.1 408 "), "{i}: {answer:?}");
    }
    // Nothing ran out: no accept failed for want of descriptors.
    let log = std::fs::read_to_string(home.dir.join("daemon.log")).unwrap();
    assert!(!log.contains("cannot accept"), "{log}");
}

#[test]
fn a_client_attaching_with_a_bad_timeout_says_so_on_stderr() {
    let home = TestHome::new("badclientsetting");
    let (_a, _) = home.client();
    let mut b = home.bridge_with(&[], &[("MCPSHARE_REQUEST_TIMEOUT_SECS", "abc")]);
    b.initialize();
    assert_eq!(b.call_text(json!(1), "add", json!({"a": 1, "b": 1})), "2");
    assert!(
        wait_until(WAIT, || b
            .stderr
            .lock()
            .unwrap()
            .contains("MCPSHARE_REQUEST_TIMEOUT_SECS=abc")),
        "stderr: {}",
        b.stderr.lock().unwrap()
    );
}
