//! `mcpshare orphans`: servers left behind by a dead client are listed
//! and stopped by pid; a server whose client lives is neither, nor is a pid
//! started at another time than the one named. The test makes its own
//! processes and stops every one of them by pid.

use crate::common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A bash script that forks a `sleep` (so the server is a tree), writes its
/// pid to `$2` (temp + rename) and runs on as `sleep` named `$1`: a
/// process whose command line is `$1 300`.
const SERVER: &str = "sleep 300 &\n\
    echo $$ > \"$2.tmp\" && mv \"$2.tmp\" \"$2\"\n\
    exec -a \"$1\" sleep 300\n";

fn start_time(pid: u32) -> Option<u64> {
    mcpshare::platform::start_time(pid)
}

fn parent(pid: u32) -> Option<u32> {
    mcpshare::platform::parent_and_group(pid).map(|(p, _)| p)
}

fn cmdline(pid: u32) -> Vec<String> {
    mcpshare::platform::procs::cmdline(pid).unwrap_or_default()
}

/// The processes a test started, by pid and start time: on drop (also on
/// panic), each that still runs as that process gets SIGKILL.
#[derive(Default)]
struct Started {
    procs: Vec<(u32, u64)>,
    children: Vec<Child>,
}

impl Started {
    /// Note `pid` and every descendant it has now.
    fn note_tree(&mut self, pid: u32) {
        let mut tree = vec![pid];
        let mut i = 0;
        while i < tree.len() {
            for p in mcpshare::platform::all_pids() {
                if parent(p) == Some(tree[i]) && !tree.contains(&p) {
                    tree.push(p);
                }
            }
            i += 1;
        }
        for p in tree {
            if let Some(t) = start_time(p) {
                self.procs.push((p, t));
            }
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for &(pid, t) in self.procs.iter().rev() {
            if start_time(pid) == Some(t) && pid_alive(pid) {
                signal(pid, libc::SIGKILL);
            }
        }
        for &(pid, t) in &self.procs {
            wait_until(Duration::from_secs(5), || {
                !(start_time(pid) == Some(t) && pid_alive(pid))
            });
        }
    }
}

/// `dir/node_modules/@scope/NAME/index.js`, the name a fake server runs under.
fn server_name(dir: &Path, name: &str) -> PathBuf {
    dir.join("node_modules/@scope").join(name).join("index.js")
}

fn read_pid(file: &Path) -> u32 {
    assert!(
        wait_until(WAIT, || std::fs::read_to_string(file)
            .is_ok_and(|s| s.trim().parse::<u32>().is_ok())),
        "the fake server never wrote {}",
        file.display()
    );
    std::fs::read_to_string(file)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Wait until `pid` runs under the name `name` (its `exec -a` happened).
fn wait_named(pid: u32, name: &Path) {
    let want = name.display().to_string();
    assert!(
        wait_until(WAIT, || cmdline(pid).first() == Some(&want)),
        "pid {pid} never ran as {want}: {:?}",
        cmdline(pid)
    );
}

#[test]
fn orphans_are_listed_and_stopped_by_pid_and_nothing_else_is() {
    let h = TestHome::new("orphans");
    let user = h.dir.join("user");
    let script = h.dir.join("server.sh");
    std::fs::write(&script, SERVER).unwrap();
    let orphan_name = server_name(&h.dir, "server-x");
    let kept_name = server_name(&h.dir, "server-y");
    std::fs::create_dir_all(user.join(".cursor")).unwrap();
    std::fs::write(
        user.join(".cursor/mcp.json"),
        json!({"mcpServers": {"fake-x": {"command": orphan_name, "args": ["300"]}}}).to_string(),
    )
    .unwrap();
    let mut started = Started::default();

    // The orphan: double-forked through a shell that exits, in a session
    // of its own, its stdin a pipe whose only writer (this test) closes it.
    let orphan_file = h.dir.join("orphan.pid");
    let mut launcher = Command::new("sh")
        .arg("-c")
        .arg(r#"exec 3<&0; setsid bash "$0" "$1" "$2" <&3 3<&- >/dev/null 2>&1 & exit 0"#)
        .arg(&script)
        .arg(&orphan_name)
        .arg(&orphan_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let writer = launcher.stdin.take();
    let orphan = read_pid(&orphan_file);
    wait_named(orphan, &orphan_name);
    started.note_tree(orphan);
    assert!(launcher.wait().unwrap().success());
    drop(writer);
    assert!(
        wait_until(WAIT, || parent(orphan) == Some(1)),
        "pid {orphan} was not adopted by pid 1 (parent {:?}); a subreaper above this test?",
        parent(orphan)
    );
    let orphan_start = start_time(orphan).unwrap();

    // A server of the same shape whose parent (this test) lives.
    let kept_file = h.dir.join("kept.pid");
    let kept_child = Command::new("bash")
        .arg(&script)
        .arg(&kept_name)
        .arg(&kept_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let kept = kept_child.id();
    started.children.push(kept_child);
    assert_eq!(read_pid(&kept_file), kept);
    wait_named(kept, &kept_name);
    started.note_tree(kept);

    let orphans = |args: &[&str]| {
        let mut c = h.cmd();
        c.arg("orphans")
            .args(args)
            .env("HOME", &user)
            .stdin(Stdio::null());
        run_bounded(c, WAIT)
    };
    let out = orphans(&["--json"]);
    assert!(out.status.success(), "{out:?}");
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mine: Vec<&Value> = list.iter().filter(|o| o["pid"] == json!(orphan)).collect();
    assert_eq!(mine.len(), 1, "pid {orphan} is not listed: {list:#?}");
    let o = mine[0];
    assert_eq!(o["start_time"], json!(orphan_start));
    assert_eq!(o["parent"], json!(1));
    assert_eq!(o["client"], json!("cursor/fake-x"), "{o:#}");
    let members: Vec<u64> = o["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(members.len(), 2, "the server and its sleep: {o:#}");
    assert_eq!(members[0], orphan as u64);
    assert!(o["rss_bytes"].as_u64().unwrap() > 0);
    let reasons = o["reasons"].to_string();
    assert!(reasons.contains("adopted by pid 1"), "{reasons}");
    assert!(reasons.contains("writer is gone"), "{reasons}");
    assert!(reasons.contains("@*/server-*"), "{reasons}");
    for other in &list {
        let pids = other["members"].to_string();
        assert!(
            !pids.contains(&format!("\"pid\":{kept},")),
            "pid {kept} has a live parent but is listed: {other:#}"
        );
        assert_ne!(other["pid"], json!(std::process::id()));
    }

    let text = orphans(&[]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("pid {orphan}  age ")), "{text}");
    assert!(text.contains("config: cursor/fake-x"), "{text}");
    let total = text
        .lines()
        .find(|l| l.contains(" orphan") && l.ends_with(" MiB"));
    let count = total.and_then(|l| l.split(' ').next()?.parse::<usize>().ok());
    assert!(count.is_some_and(|n| n >= 1), "no total line: {text}");

    // doctor names it, with the command that stops it.
    let doctor = h.mcpshare(&["doctor", "--json"]);
    let checks: Vec<Value> = serde_json::from_slice(&doctor.stdout).unwrap();
    let c = checks
        .iter()
        .find(|c| c["check"] == json!("foreign_orphans"))
        .expect("a foreign_orphans check");
    assert_eq!(c["level"], json!("warning"), "{c}");
    assert!(
        c["message"].as_str().unwrap().contains(&orphan.to_string()),
        "{c}"
    );
    let fix = c["fix"].as_str().unwrap();
    assert!(
        fix.contains(" orphans --stop ") && fix.contains(&orphan.to_string()),
        "{c}"
    );

    // Refused: a live parent, a start time other than the one named.
    let out = orphans(&["--stop", &kept.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("its parent pid {} is alive", std::process::id())),
        "{said}"
    );
    let reused = format!("{orphan}@{}", orphan_start + 1);
    let out = orphans(&["--stop", &reused]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the pid was reused"),
        "{out:?}"
    );
    let usage = orphans(&["--stop"]);
    assert_eq!(usage.status.code(), Some(2), "{usage:?}");
    assert!(
        pid_alive(orphan) && pid_alive(kept),
        "a refused --stop signalled"
    );

    // Stopped: the whole tree, by the pid and start time it was listed with.
    let named = format!("{orphan}@{orphan_start}");
    let out = orphans(&["--stop", &named]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    for m in &members {
        assert!(said.contains(&format!("pid {m}: ended by SIG")), "{said}");
    }
    assert!(said.contains("stopped 1 of 1 tree, freed "), "{said}");
    for m in &members {
        let m = *m as u32;
        assert!(
            wait_until(WAIT, || !pid_alive(m)),
            "pid {m} still runs after --stop"
        );
    }
    assert!(pid_alive(kept), "the live-parent server was signalled");
}
