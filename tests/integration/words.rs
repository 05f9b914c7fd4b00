//! What a new user meets: every command's own help, messages that say what
//! happened and what to do, and what status, logs and doctor show.

use crate::common::*;
use serde_json::json;
use std::time::Duration;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `CMD --help`, `CMD -h` and `help CMD` print that command's usage
/// (its synopsis and every option) on stdout and exit 0.
#[test]
fn every_command_prints_its_own_usage() {
    let home = TestHome::new("cmdhelp");
    for c in mcpshare::cli::COMMANDS {
        let words: Vec<&str> = c.name.split(' ').collect();
        let ways: [Vec<&str>; 3] = [
            [&words[..], &["--help"]].concat(),
            [&words[..], &["-h"]].concat(),
            [&["help"], &words[..]].concat(),
        ];
        for args in ways {
            let out = home.mcpshare(&args);
            let stdout = text(&out.stdout);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{args:?}: {}",
                text(&out.stderr)
            );
            assert!(stdout.contains(c.synopsis), "{args:?}:\n{stdout}");
            for (flag, _) in c.options {
                assert!(stdout.contains(flag), "{args:?} lacks {flag}:\n{stdout}");
            }
        }
    }
    // After `--`, --help is the server's.
    let out = home.mcpshare(&["run", "--help"]);
    assert!(text(&out.stdout).starts_with("Usage: mcpshare run"));
    for args in [&["-h"][..], &["help"], &["-V"]] {
        let out = home.mcpshare(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
    }
    let help = text(&home.mcpshare(&["--help"]).stdout);
    for documented in ["-h", "-V", "help [COMMAND]"] {
        assert!(
            help.contains(documented),
            "help lacks {documented}:\n{help}"
        );
    }
}

/// A stray word after --version is refused; `run` without a command
/// prints run's usage; each stderr line is whole (ends with a newline).
#[test]
fn usage_errors_say_what_to_type() {
    let home = TestHome::new("usagewords");
    for args in [&["--version", "extra"][..], &["help", "frobnicate"]] {
        let out = home.mcpshare(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stdout)
        );
    }
    let out = home.mcpshare(&["run"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.starts_with("mcpshare: "), "{err}");
    assert!(
        err.contains("Usage: mcpshare run") && err.contains("--isolated"),
        "{err}"
    );
    for args in [&["run"][..], &["status", "--bogus"], &["logs"]] {
        let err = text(&home.mcpshare(args).stderr);
        assert!(err.ends_with('\n'), "{args:?}: {err:?}");
        assert!(err.contains("\nhint: "), "{args:?}: {err:?}");
    }
    // Errors that are not usage errors: each line whole, a hint on its own.
    for args in [
        &["logs", "nope-0"][..],
        &["restart", "nope-0"],
        &["frobnicate"],
    ] {
        let err = text(&home.mcpshare(args).stderr);
        assert!(
            err.ends_with('\n') && err.starts_with("mcpshare: "),
            "{args:?}: {err:?}"
        );
        assert!(
            err.lines().all(|l| l.starts_with("mcpshare: ")
                || l.starts_with("hint: ")
                || l.starts_with(' ')),
            "{args:?}: {err:?}"
        );
    }
}

/// A bridge whose server is `sh -c SCRIPT`.
fn shell_bridge(home: &TestHome, script: &str) -> Bridge {
    let mut c = home.cmd();
    c.args(["run", "--", "sh", "-c", script]);
    Bridge::spawn(c)
}

/// A server that exits, at once or after reading `initialize`: the client
/// learns its exit status and its last stderr lines, and where to look.
#[test]
fn a_server_that_exits_before_answering_says_how_and_why() {
    let home = TestHome::new("exitsearly");
    for script in [
        "echo 'fatal: no API key' >&2; echo 'set FOO_KEY' >&2; exit 3",
        "read line; echo 'fatal: no API key' >&2; echo 'set FOO_KEY' >&2; exit 3",
    ] {
        let mut b = shell_bridge(&home, script);
        let message = b.initialize_error();
        let id = home.status()["upstreams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["command"][2] == json!(script))
            .map(|u| u["id"].as_str().unwrap().to_string())
            .expect("the upstream is listed");
        assert!(
            message.contains(&format!(
                "upstream {id} exited with status 3 before answering initialize"
            )),
            "{script}: {message}"
        );
        assert!(
            message.contains("its last stderr lines: fatal: no API key | set FOO_KEY"),
            "{script}: {message}"
        );
        assert!(
            message.contains(&format!("see 'mcpshare logs {id}'")),
            "{script}: {message}"
        );
        assert!(
            !message.contains('{') && !message.contains("\\\""),
            "{message}"
        );
    }
}

/// The upstream id of the first upstream.
fn first_id(home: &TestHome) -> String {
    home.status()["upstreams"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// "2026-11-29T22:48:13.551Z " at the start of a line.
fn stamped(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 25
        && b[4] == b'-'
        && b[10] == b'T'
        && b[23] == b'Z'
        && b[24] == b' '
        && b[..4].iter().all(u8::is_ascii_digit)
}

#[test]
fn logs_stamp_each_line_and_mark_each_start() {
    let home = TestHome::new("logstamps");
    let (_a, pid) = home.client_env(&[("FIXTURE_STDERR", "2")]);
    let id = first_id(&home);
    let mut out = String::new();
    assert!(
        wait_until(WAIT, || {
            out = text(&home.mcpshare(&["logs", &id]).stdout);
            out.contains("fixture stderr line 1")
        }),
        "{out}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.iter().all(|l| stamped(l)), "{out}");
    assert!(
        lines[0].ends_with(&format!(" started pid {pid}, start 1")),
        "{out}"
    );
    assert!(
        lines[1].ends_with(&format!(" fixture pid {pid} started")),
        "{out}"
    );
}

/// `logs -n 0 -f` prints what comes after it started, not the ring.
#[test]
fn logs_follow_from_zero_prints_only_new_lines() {
    let home = TestHome::new("logsnew");
    let (mut a, first) = home.client_env(&[("FIXTURE_STDERR", "3")]);
    let id = first_id(&home);
    assert!(wait_until(WAIT, || text(
        &home.mcpshare(&["logs", &id]).stdout
    )
    .contains("fixture stderr line 2")));
    let mut follow = home.cmd();
    follow
        .args(["logs", &id, "-n", "0", "-f"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut follower = Bridge::spawn(follow);
    // The follower may ask after a restart's lines were written: restart
    // until it shows one (bounded).
    let mut seen = String::new();
    for n in 2..7 {
        let out = home.mcpshare(&["restart", &id]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let pid = a.upstream_pid(json!(n));
        home.seen_upstreams.lock().unwrap().push(pid);
        let shown = wait_until(Duration::from_secs(3), || {
            while let Some(l) = follower.recv_line(Duration::from_millis(20)) {
                seen.push_str(&l);
                seen.push('\n');
            }
            seen.contains(&format!("fixture pid {pid} started"))
        });
        if shown {
            break;
        }
    }
    signal(follower.pid(), libc::SIGTERM);
    assert!(seen.contains("fixture pid"), "nothing followed: {seen:?}");
    assert!(
        !seen.contains(&format!("fixture pid {first} started")),
        "-n 0 printed old lines: {seen:?}"
    );
}

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn entries(p: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `doctor` and `status` read a world-writable home without changing it;
/// doctor names the problem and the exact fix.
#[test]
fn doctor_reads_a_loose_home_and_changes_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let home = TestHome::new("loosehome");
    std::fs::set_permissions(&home.dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    for args in [&["doctor"][..], &["status"], &["doctor", "processes"]] {
        let out = home.mcpshare(args);
        assert_eq!(mode(&home.dir), 0o777, "{args:?} changed the mode");
        assert_eq!(
            entries(&home.dir),
            Vec::<String>::new(),
            "{args:?} wrote files"
        );
        if args == ["doctor"] {
            let stdout = text(&out.stdout);
            assert_eq!(out.status.code(), Some(1), "{stdout}");
            assert!(stdout.contains("error   home: "), "{stdout}");
            assert!(stdout.contains("mode 0777"), "{stdout}");
            assert!(
                stdout.contains(&format!("fix: chmod 700 {}", home.dir.display())),
                "{stdout}"
            );
        }
    }
    let out = home.mcpshare(&["doctor", "--json"]);
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(checks[0]["check"], json!("home"));
    assert_eq!(checks[0]["level"], json!("error"));
    std::fs::set_permissions(&home.dir, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// A home that is a file: "not a directory", from doctor and from run.
#[test]
fn a_home_that_is_a_file_is_not_a_directory() {
    let home = TestHome::new("filehome");
    let file = home.dir.join("home-file");
    std::fs::write(&file, "x").unwrap();
    let out = home
        .cmd()
        .env("MCPSHARE_HOME", &file)
        .arg("doctor")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("{} is not a directory", file.display())),
        "{stdout}"
    );
    assert!(stdout.contains("fix: "), "{stdout}");
    let mut c = home.cmd();
    c.env("MCPSHARE_HOME", &file)
        .args(["run", "--"])
        .arg(fixture());
    // It refuses the home before it reads anything.
    let mut b = Bridge::spawn(c);
    let exited = b.wait_exit(WAIT);
    // Its stderr is read by another thread: wait for the line.
    assert!(wait_until(WAIT, || b
        .stderr
        .lock()
        .unwrap()
        .contains("not a directory")));
    let err = b.stderr.lock().unwrap().clone();
    assert!(exited.is_some_and(|s| !s.success()), "{err}");
    assert!(!err.to_lowercase().contains("file exists"), "{err}");
}

/// A relative MCPSHARE_HOME would give each working directory a daemon of
/// its own: run refuses it, doctor names the absolute path to use.
#[test]
fn a_relative_home_is_refused_with_the_absolute_one_to_use() {
    let home = TestHome::new("relhome");
    let out = home
        .cmd()
        .env("MCPSHARE_HOME", "rel-home")
        .current_dir(&home.dir)
        .arg("doctor")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("relative"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "MCPSHARE_HOME={}",
            home.dir.join("rel-home").display()
        )),
        "{stdout}"
    );
    let out = home
        .cmd()
        .env("MCPSHARE_HOME", "rel-home")
        .current_dir(&home.dir)
        .args(["status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("relative"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !home.dir.join("rel-home").exists(),
        "a relative home was created"
    );
}

/// The upstream rows of `mcpshare status`, after its header line.
fn status_rows(out: &str) -> (String, Vec<String>) {
    let mut lines = out.lines().skip_while(|l| !l.starts_with("UPSTREAM"));
    let header = lines.next().unwrap_or_default().to_string();
    let rows = lines
        .filter(|l| !l.starts_with(' ') && !l.is_empty())
        .map(str::to_string)
        .collect();
    (header, rows)
}

/// `status` names each upstream's working directory and the clients
/// attached to it, and its columns stay aligned with a long id.
#[test]
fn status_shows_cwd_and_clients_in_aligned_columns() {
    let home = TestHome::new("statuscols");
    let long = home.dir.join("a-server-with-a-rather-long-name-for-its-id");
    std::os::unix::fs::symlink(fixture(), &long).unwrap();
    let (_a, up) = home.client();
    let mut c = home.cmd();
    c.args(["run", "--"]).arg(&long).current_dir(&home.dir);
    let mut b = Bridge::spawn(c);
    b.initialize();
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(b.upstream_pid(json!(1)));
    let out = text(&home.mcpshare(&["status"]).stdout);
    let (header, rows) = status_rows(&out);
    assert_eq!(rows.len(), 2, "{out}");
    for col in ["STATE", "PID", "CWD", "CLIENTS", "COMMAND"] {
        assert!(header.contains(col), "{col} missing:\n{out}");
    }
    let at = |l: &str, w: &str| l.find(w).unwrap_or_else(|| panic!("no {w} in {l:?}"));
    for row in &rows {
        assert_eq!(at(row, "running"), at(&header, "STATE"), "\n{out}");
        assert!(row.contains("mcpshare-test"), "no client name:\n{out}");
    }
    let long_row = rows.iter().find(|r| r.contains("a-server-with")).unwrap();
    let short_row = rows.iter().find(|r| !r.contains("a-server-with")).unwrap();
    assert!(short_row.contains(&up.to_string()), "{out}");
    // The bridge in the temp home runs there; the cwd column says so, shortened.
    let dir_name = home.dir.file_name().unwrap().to_str().unwrap();
    assert!(long_row.contains(dir_name), "{out}");
    let json = home.status();
    let clients = &json["upstreams"][0]["clients"];
    assert_eq!(clients, &json!(["mcpshare-test"]), "{json}");
}

/// Between a crash and its restart, status says when the restart comes.
#[test]
fn status_says_restarting_in_n_s_during_backoff() {
    let home = TestHome::new("statusbackoff");
    let (mut b, first) = home.client();
    // The second crash within a minute backs off 2 s, time enough to look.
    let mut pid = first;
    for n in 0..2 {
        b.send(
            &json!({"jsonrpc": "2.0", "id": format!("crash{n}"), "method": "tools/call",
            "params": {"name": "crash", "arguments": {"code": 1}}}),
        );
        let _ = b.response(&json!(format!("crash{n}")), WAIT);
        assert!(wait_until(WAIT, || !pid_alive(pid)));
        if n == 0 {
            assert!(wait_until(WAIT, || home.status()["upstreams"][0]["state"]
                == json!("running")));
            pid = b.upstream_pid(json!("pid-after"));
            home.seen_upstreams.lock().unwrap().push(pid);
        }
    }
    let mut seen = String::new();
    assert!(
        wait_until(WAIT, || {
            seen = text(&home.mcpshare(&["status"]).stdout);
            seen.contains("restarting in 1 s") || seen.contains("restarting in 2 s")
        }),
        "{seen}"
    );
    let mut st = json!(null);
    let seen_json = wait_until(WAIT, || {
        st = home.status();
        st["upstreams"][0]["state"] == json!("restarting")
            && st["upstreams"][0]["restart_in_ms"]
                .as_u64()
                .is_some_and(|ms| ms <= 2000)
    });
    // The restart may have come already: then it runs again.
    assert!(
        seen_json || st["upstreams"][0]["state"] == json!("running"),
        "{st}"
    );
    let last = b.upstream_pid(json!("pid-last"));
    home.seen_upstreams.lock().unwrap().push(last);
}

/// `--global` with a relative path argument warns on the bridge's stderr:
/// a client in another directory would use the first one's files.
#[test]
fn global_with_a_relative_path_warns() {
    let home = TestHome::new("globalrel");
    let spawn = |flags: &[&str], arg: &str| {
        let mut c = home.cmd();
        c.arg("run")
            .args(flags)
            .arg("--")
            .arg(fixture())
            .arg(arg)
            .current_dir(&home.dir);
        let mut b = Bridge::spawn(c);
        b.initialize();
        home.seen_upstreams
            .lock()
            .unwrap()
            .push(b.upstream_pid(json!(1)));
        // A warning is written before the bridge answers anything, but its
        // stderr is read by another thread: give that thread a moment when
        // a warning is due.
        if flags.contains(&"--global") && arg.starts_with("--data=./") {
            let _ = wait_until(WAIT, || b.stderr.lock().unwrap().contains("warning: "));
        }
        b.stderr.lock().unwrap().clone()
    };
    let err = spawn(&["--global"], "--data=./notes");
    assert!(err.contains("warning: "), "{err}");
    assert!(err.contains("'./notes'"), "{err}");
    assert!(
        err.contains(&home.dir.join("notes").display().to_string()),
        "{err}"
    );
    for (flags, arg) in [(&["--global"][..], "/abs/notes"), (&[][..], "./notes")] {
        let err = spawn(flags, arg);
        assert!(!err.contains("warning"), "{flags:?} {arg}: {err}");
    }
}

/// A hung daemon: status says what timed out and after how long, with
/// --json as a JSON object on stdout, and both forms answer as fast.
#[test]
fn status_of_a_hung_daemon_says_what_timed_out() {
    let home = TestHome::new("hungwords");
    let (_b, _) = home.client();
    let daemon = home.daemon_pid().unwrap();
    signal(daemon, libc::SIGSTOP);
    let timed = |args: &[&str]| {
        let started = std::time::Instant::now();
        let out = home.mcpshare(args);
        (out, started.elapsed())
    };
    let (human, human_took) = timed(&["status"]);
    let (json_out, json_took) = timed(&["status", "--json"]);
    signal(daemon, libc::SIGCONT);
    for out in [&human, &json_out] {
        assert_eq!(out.status.code(), Some(4));
        let err = text(&out.stderr);
        assert!(!err.contains("timeout: global"), "{err}");
        assert!(
            err.contains(&format!("daemon pid {daemon}"))
                && err.contains("no answer to GET /health on port ")
                && err.contains("within 1 s"),
            "{err}"
        );
        assert!(err.contains("stop --force"), "{err}");
    }
    let v: serde_json::Value = serde_json::from_slice(&json_out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {:?}", text(&json_out.stdout)));
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("within 1 s")),
        "{v}"
    );
    assert_eq!(v["daemon"]["pid"], json!(daemon), "{v}");
    assert!(
        human_took < json_took + Duration::from_secs(1),
        "status took {human_took:?}, status --json {json_took:?}"
    );
}

/// While a server is slow to start, the bridge says so on stderr every
/// few seconds; the message that ends the wait states the start timeout.
#[test]
fn a_slow_start_is_reported_on_stderr_with_its_timeout() {
    let home = TestHome::new("slowwords");
    let mut b = home.bridge_with(
        &[],
        &[
            ("FIXTURE_STARTUP_DELAY_MS", "60000"),
            ("MCPSHARE_START_TIMEOUT_SECS", "6"),
        ],
    );
    let message = b.initialize_error();
    assert!(message.contains("within 6 s"), "{message}");
    // The bridge's stderr is read by another thread: wait for its lines.
    let stderr = b.stderr.clone();
    let said = |what: &str| stderr.lock().unwrap().contains(what);
    assert!(
        wait_until(WAIT, || said("waiting for fixture-")
            && said(" to start: 5 s")
            && said("within 6 s (MCPSHARE_START_TIMEOUT_SECS)")),
        "{}",
        stderr.lock().unwrap()
    );
}

/// Doctor names an upstream that fails to start, with its last error and
/// where to read more.
#[test]
fn doctor_reports_an_upstream_that_fails_to_start() {
    let home = TestHome::new("doctorfails");
    let mut b = shell_bridge(&home, "echo 'fatal: no API key' >&2; exit 3");
    b.initialize_error();
    let id = first_id(&home);
    let out = home.mcpshare(&["doctor"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("failing_upstreams:"))
        .unwrap_or_else(|| panic!("no failing_upstreams check:\n{stdout}"));
    assert!(line.starts_with("error"), "{stdout}");
    assert!(
        line.contains(&id) && line.contains("exited with status 3"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("logs {id}")), "{stdout}");
}

/// `doctor processes` says so when nothing is on record.
#[test]
fn doctor_processes_says_when_nothing_is_on_record() {
    let home = TestHome::new("noprocs");
    let out = home.mcpshare(&["doctor", "processes"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("no processes on record in "),
        "{stdout:?}"
    );
    // --json stays an empty array.
    let out = home.mcpshare(&["doctor", "processes", "--json"]);
    assert_eq!(text(&out.stdout).trim(), "[]");
}

/// A server started through a `#!/usr/bin/env` script runs another
/// executable than the one first exec'd: its record follows, so doctor
/// does not call it a mismatch.
#[test]
fn an_env_script_upstream_is_not_an_executable_mismatch() {
    use std::os::unix::fs::PermissionsExt;
    let home = TestHome::new("envscript");
    let script = home.dir.join("server");
    std::fs::write(
        &script,
        format!(
            "#!/usr/bin/env sh\nsleep 0.2\nexec {}\n",
            fixture().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = home.cmd();
    c.args(["run", "--"]).arg(&script);
    let mut b = Bridge::spawn(c);
    b.initialize();
    let pid = b.upstream_pid(json!(1));
    home.seen_upstreams.lock().unwrap().push(pid);
    let out = home.mcpshare(&["doctor", "processes", "--json"]);
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let up = all
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["record"]["pid"] == json!(pid))
        .unwrap_or_else(|| panic!("no record of {pid}: {all}"));
    assert_eq!(up["executable_match"], json!(true), "{up}");
}

/// A daemon that cannot start: the client's error and the bridge's stderr
/// give the daemon's own error and the hint each on a line of its own.
#[test]
fn a_daemon_that_cannot_start_is_reported_with_its_hint_on_its_own_line() {
    let home = TestHome::new("nodaemon");
    std::fs::create_dir(home.dir.join("daemon.json")).unwrap();
    let mut b = home.bridge(&[]);
    let message = b.initialize_error();
    assert!(
        message.contains("daemon.json: is a directory\nhint: run 'mcpshare daemon'"),
        "{message:?}"
    );
    assert!(wait_until(WAIT, || b
        .stderr
        .lock()
        .unwrap()
        .lines()
        .any(|l| l.starts_with("hint: run 'mcpshare daemon'"))));
}

/// A daemon that answers /health but not /api/status: status names the
/// request that went unanswered and for how long, not "timeout: global".
#[test]
fn a_daemon_that_does_not_answer_status_is_named_with_the_wait() {
    use std::io::{BufRead, BufReader, Write};
    let home = TestHome::new("statushang");
    let _lock = home.hold_daemon_lock();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let me = std::process::id();
    home.write_manifest(&manifest_naming(
        me,
        mcpshare::platform::start_time(me).unwrap(),
        port,
    ));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ended = done.clone();
    let server = std::thread::spawn(move || {
        let mut held = Vec::new();
        let deadline = std::time::Instant::now() + WAIT;
        while !ended.load(std::sync::atomic::Ordering::SeqCst)
            && std::time::Instant::now() < deadline
        {
            let Ok((conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            conn.set_nonblocking(false).unwrap();
            conn.set_read_timeout(Some(WAIT)).unwrap();
            let mut first = String::new();
            let _ = BufReader::new(&conn).read_line(&mut first);
            if first.starts_with("GET /health") {
                let body = json!({"status": "ok", "pid": me, "version": "0.1.0", "protocol": 1})
                    .to_string();
                let _ = write!(
                    &conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            } else {
                held.push(conn); // never answered
            }
        }
    });
    let out = home.mcpshare(&["status"]);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    server.join().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "daemon pid {me}: no answer to GET /api/status within 5 s"
        )),
        "{err}"
    );
    std::fs::remove_file(home.dir.join("daemon.json")).unwrap();
}
