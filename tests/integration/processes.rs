//! The daemon's own processes: signals reach it and its upstreams, a
//! daemon killed with -9 leaves nothing running for long, and its files
//! and records do not pile up.

use crate::common::*;
use serde_json::json;
use std::time::Duration;

/// SIGHUP, SIGINT and SIGTERM as bits of a /proc status signal mask.
const TERMINATION_BITS: u64 =
    (1 << (libc::SIGHUP - 1)) | (1 << (libc::SIGINT - 1)) | (1 << (libc::SIGTERM - 1));

/// A hex signal mask (`SigBlk`, `SigIgn`, …) from `/proc/<pid>/status`.
fn signal_mask(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"));
    u64::from_str_radix(line.trim(), 16).unwrap()
}

/// A shell wrapper around the fixture (`$0`) that reports SIGTERM on its
/// stderr and exits 0; it outlives the fixture, so only a signal ends it.
const TRAPPING_WRAPPER: &str =
    "trap 'echo wrapper got TERM >&2; sleep \"${WRAPPER_TERM_SECS:-0}\"; exit 0' TERM
exec 3<&0
\"$0\" <&3 &
wait
sleep 300 &
wait";

/// `mcpshare run -- bash -c TRAPPING_WRAPPER fixture`, initialized. Bash,
/// not dash: dash clears the signal mask it inherits, bash keeps it.
fn wrapped_client(home: &TestHome, env: &[(&str, &str)]) -> Bridge {
    let mut c = home.cmd();
    c.args(["run", "--", "bash", "-c", TRAPPING_WRAPPER])
        .arg(fixture())
        .envs(env.iter().copied());
    let mut b = Bridge::spawn(c);
    b.initialize();
    b
}

/// (pid, id, log file) of the only upstream, from `status --json`.
fn only_upstream(home: &TestHome) -> (u32, String, String) {
    let st = home.status();
    let up = &st["upstreams"][0];
    let pid = up["pid"].as_u64().unwrap_or_else(|| panic!("no pid: {st}")) as u32;
    home.seen_upstreams.lock().unwrap().push(pid);
    (
        pid,
        up["id"].as_str().unwrap().to_string(),
        up["log"].as_str().unwrap().to_string(),
    )
}

#[test]
fn upstreams_start_with_termination_signals_unblocked_and_not_ignored() {
    let home = TestHome::new("sigmask");
    let (_a, _) = home.client();
    let (pid, _, _) = only_upstream(&home);
    assert_eq!(
        signal_mask(pid, "SigBlk"),
        0,
        "upstream pid {pid} starts with signals blocked"
    );
    assert_eq!(
        signal_mask(pid, "SigIgn") & TERMINATION_BITS,
        0,
        "upstream pid {pid} starts ignoring HUP, INT or TERM"
    );
}

#[test]
fn a_shell_wrapper_upstream_gets_sigterm_when_stopped() {
    let home = TestHome::new("wrapterm");
    let mut a = wrapped_client(&home, &[]);
    let (pid, _, log) = only_upstream(&home);
    assert_eq!(a.call_text(json!(1), "echo", json!({"text": "up"})), "up");
    let out = home.mcpshare(&["stop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let upstream_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        upstream_log.contains("wrapper got TERM"),
        "the wrapper never saw SIGTERM; its log:\n{upstream_log}"
    );
    assert!(
        home.log()
            .contains(&format!("(pid {pid}) stopped: exit status: 0")),
        "the wrapper did not exit on its own after SIGTERM:\n{}",
        home.log()
    );
}

#[test]
fn a_second_sigterm_while_stopping_is_handled_too() {
    let home = TestHome::new("twoterms");
    // The wrapper takes 2 s over its SIGTERM, so the daemon is still
    // stopping when the second signal comes.
    let _a = wrapped_client(&home, &[("WRAPPER_TERM_SECS", "2")]);
    let (pid, _, log) = only_upstream(&home);
    let daemon = home.daemon_pid().unwrap();
    signal(daemon, libc::SIGTERM);
    assert!(
        wait_until(WAIT, || std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("wrapper got TERM")),
        "the daemon never stopped the wrapper:\n{}",
        home.log()
    );
    assert!(
        pid_alive(daemon),
        "the daemon did not wait for its upstream"
    );
    signal(daemon, libc::SIGTERM);
    assert!(
        wait_until(WAIT, || !pid_alive(daemon)),
        "the daemon did not stop"
    );
    let text = home.log();
    assert!(
        text.contains(&format!("signal {} again while stopping", libc::SIGTERM)),
        "the second SIGTERM was not handled:\n{text}"
    );
    assert!(
        text.contains(&format!("(pid {pid}) stopped: exit status: 0"))
            && text.contains("daemon stopped"),
        "the daemon did not finish its orderly stop:\n{text}"
    );
}

/// Live processes in process group `pgid`, from /proc (by group, never by name).
fn group_members(pgid: u32) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|pid| {
            mcpshare::platform::parent_and_group(*pid).is_some_and(|(_, g)| g == pgid)
                && pid_alive(*pid)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// SIGKILLs the pids it holds when dropped: a test's leftovers, by pid.
struct KillOnDrop(Vec<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in &self.0 {
            if pid_alive(*pid) {
                signal(*pid, libc::SIGKILL);
            }
        }
    }
}

#[test]
fn a_helper_that_outlives_a_killed_daemon_is_reported_then_stopped_by_the_next() {
    let home = TestHome::new("kill9");
    let mut c = home.cmd();
    c.args(["run", "--", "/bin/sh", "-c", "sleep 300 & exec \"$0\""])
        .arg(fixture());
    let mut a = Bridge::spawn(c);
    a.initialize();
    let (leader, id, _) = only_upstream(&home);
    let helpers: Vec<u32> = group_members(leader)
        .into_iter()
        .filter(|p| *p != leader)
        .collect();
    assert_eq!(helpers.len(), 1, "want one sleep beside the fixture");
    let helper = helpers[0];
    let _cleanup = KillOnDrop(vec![helper]);
    // Without a client the bridge cannot start a new daemon behind our back.
    drop(a);
    let daemon = home.daemon_pid().unwrap();
    signal(daemon, libc::SIGKILL);
    assert!(wait_until(WAIT, || !pid_alive(daemon)), "kill -9 failed");
    assert!(
        wait_until(WAIT, || !pid_alive(leader)),
        "the upstream did not die with its daemon"
    );
    assert!(pid_alive(helper), "the helper died too: nothing to test");

    let out = home.mcpshare(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text
        .lines()
        .position(|l| l.contains("orphaned_upstreams:"))
        .map(|i| text.lines().skip(i).take(2).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default();
    assert!(
        line.starts_with("error") && line.contains(&helper.to_string()) && line.contains(&id),
        "doctor does not name the survivor {helper}:\n{text}"
    );
    assert!(
        line.contains(&format!("fix: kill -TERM -{leader}")),
        "doctor gives no exact fix:\n{text}"
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    // The suggested clean-up keeps the only record of the survivor.
    let out = home.mcpshare(&["doctor", "processes", "--cleanup-stale-records"]);
    assert!(out.status.success());
    let record = home.dir.join(format!("processes/{leader}.json"));
    assert!(record.exists(), "the record of a live group was deleted");

    // The next daemon stops the group its predecessor left.
    let mut b = home.bridge(&[]);
    b.initialize();
    assert!(
        wait_until(WAIT, || !pid_alive(helper)),
        "the next daemon left pid {helper} running:\n{}",
        home.log()
    );
    assert!(
        wait_until(WAIT, || !record.exists()),
        "the record of the stopped group remains"
    );
    let out = home.mcpshare(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("ok      orphaned_upstreams:"),
        "doctor still reports an orphan:\n{text}"
    );
}

#[test]
fn daemon_log_is_rotated_by_size_and_logging_goes_on() {
    let home = TestHome::new("logrotate");
    let mut a = home.bridge_with(&[], &[("MCPSHARE_LOG_MAX_BYTES", "1024")]);
    a.initialize();
    let (_, id, _) = only_upstream(&home);
    let rotated = home.dir.join("daemon.log.1");
    // Each restart logs a few lines; enough of them pass 1024 bytes.
    for _ in 0..20 {
        if rotated.exists() {
            break;
        }
        assert!(home.mcpshare(&["restart", &id]).status.success());
        let _ = wait_until(Duration::from_secs(2), || rotated.exists());
    }
    assert!(
        rotated.exists(),
        "daemon.log was never rotated:\n{}",
        home.log()
    );
    assert!(home.mcpshare(&["restart", &id]).status.success());
    assert!(
        wait_until(WAIT, || home.log().contains("restart requested")),
        "the daemon no longer logs to daemon.log after rotating it"
    );
    let size = std::fs::metadata(home.dir.join("daemon.log"))
        .unwrap()
        .len();
    assert!(size < 4 * 1024, "daemon.log is {size} bytes");
    home.seen_upstreams
        .lock()
        .unwrap()
        .push(a.upstream_pid(json!("last")));
}

#[test]
fn a_new_daemon_sweeps_stale_temp_files_dead_records_and_old_logs() {
    let home = TestHome::new("sweep");
    let dead = dead_pid();
    let old = std::time::SystemTime::now() - Duration::from_secs(8 * 24 * 3600);
    let write = |rel: &str, text: &str| {
        let p = home.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    };
    let stale_tmp = write(&format!(".daemon.json.{dead}.tmp"), "{");
    let stale_record_tmp = write(&format!("processes/.{dead}.json.{dead}.tmp"), "{");
    // A temp file of a live writer (this test) is left alone.
    let live_tmp = write(
        &format!("processes/.1.json.{}.tmp", std::process::id()),
        "{",
    );
    let dead_record = write(
        &format!("processes/{dead}.json"),
        &json!({"pid": dead, "role": "bridge", "transport": "stdio"}).to_string(),
    );
    let old_log = write("logs/gone-0000000000000001.log", "old\n");
    let old_log_1 = write("logs/gone-0000000000000001.log.1", "older\n");
    for p in [&old_log, &old_log_1] {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let fresh_log = write("logs/recent-0000000000000002.log", "recent\n");

    let (_a, _) = home.client();
    let swept = [
        &stale_tmp,
        &stale_record_tmp,
        &dead_record,
        &old_log,
        &old_log_1,
    ];
    assert!(
        wait_until(WAIT, || swept.iter().all(|p| !p.exists())),
        "left behind: {:?}\n{}",
        swept.iter().filter(|p| p.exists()).collect::<Vec<_>>(),
        home.log()
    );
    assert!(live_tmp.exists(), "a live writer's temp file was removed");
    assert!(fresh_log.exists(), "a recent log was removed");
}
