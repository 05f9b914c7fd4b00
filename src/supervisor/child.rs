//! An MCP server's child process: started from one long-lived thread (so
//! the parent-death signal is tied to the daemon, not to a passing thread),
//! fed by one writer thread, and reaped with a grace, SIGTERM to its group,
//! then SIGKILL. Never signals a group after its leader is reaped, and never
//! parses what the child says.

use crate::platform;
use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Command};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

/// How long a stopping upstream gets after its stdin closes, before SIGTERM.
pub const STDIN_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How long it gets after SIGTERM before SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(10);

/// How long a child that closed its stdout gets to exit on its own.
pub const EXIT_GRACE: Duration = Duration::from_millis(200);

pub const REAP_POLL: Duration = Duration::from_millis(10);

/// Messages waiting for the child's stdin. The writer thread alone blocks
/// on the pipe; everyone else queues here and never waits: a full queue
/// means the child stopped reading, and the write fails at once.
pub const STDIN_QUEUE: usize = 1024;

/// Starts child processes from one long-lived thread, because Linux sends
/// the parent-death signal when the *thread* that forked the child exits.
#[derive(Clone)]
pub struct Spawner {
    tx: Sender<(Command, Sender<std::io::Result<Child>>)>,
}

impl Spawner {
    pub fn start() -> std::io::Result<Spawner> {
        let (tx, rx) = channel::<(Command, Sender<std::io::Result<Child>>)>();
        std::thread::Builder::new()
            .name("spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })?;
        Ok(Spawner { tx })
    }

    pub fn spawn(&self, cmd: Command) -> std::io::Result<Child> {
        let (tx, rx) = channel();
        self.tx
            .send((cmd, tx))
            .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
        rx.recv()
            .map_err(|_| std::io::Error::other("spawner thread is gone"))?
    }
}

/// Wait for `child` to exit: `grace` on its own, then SIGTERM to its group,
/// then SIGKILL. The group goes too: the real server is often a grandchild
/// behind npx or uvx. The leader is waited for without being reaped, so its
/// group id stays reserved (a zombie's pid is not reused) until the final
/// SIGKILL to the group has gone out; only then is it reaped. No signal is
/// ever sent after that.
pub fn reap(mut child: Child, grace: Duration) -> std::process::ExitStatus {
    let pgid = child.id();
    if !exited_by(pgid, Instant::now() + grace) {
        let _ = platform::signal_group(pgid, platform::Signal::Term);
        if !exited_by(pgid, Instant::now() + TERM_GRACE) {
            let _ = child.kill();
        }
    }
    let _ = platform::signal_group(pgid, platform::Signal::Kill);
    child.wait().unwrap_or_else(|_| exit_unknown())
}

/// Has our unreaped child exited by `deadline`? An error (it cannot be
/// waited for) counts as exited: there is nothing left to wait for.
pub fn exited_by(pid: u32, deadline: Instant) -> bool {
    loop {
        match platform::child_exited(pid, false) {
            Ok(true) | Err(_) => return true,
            Ok(false) if Instant::now() < deadline => std::thread::sleep(REAP_POLL),
            Ok(false) => return false,
        }
    }
}

/// The child's stdin writer: the one thread that may block on the pipe.
/// It ends when the queue's sender is dropped (stdin then closes) or the
/// child closes the pipe.
pub fn write_loop(mut stdin: ChildStdin, lines: Receiver<Vec<u8>>) {
    for line in lines {
        if stdin.write_all(&line).and_then(|()| stdin.flush()).is_err() {
            return;
        }
    }
}

#[cfg(unix)]
pub fn exit_signal(status: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

#[cfg(not(unix))]
pub fn exit_signal(_status: &std::process::ExitStatus) -> Option<i32> {
    None
}

#[cfg(unix)]
pub fn exit_unknown() -> std::process::ExitStatus {
    std::os::unix::process::ExitStatusExt::from_raw(0)
}

#[cfg(not(unix))]
pub fn exit_unknown() -> std::process::ExitStatus {
    std::os::windows::process::ExitStatusExt::from_raw(0)
}

/// What one child may use (mcpshare(1), LIMITS). `memory_mb` caps its data
/// segment (RLIMIT_DATA, inherited by its children; not RLIMIT_AS, under
/// which Node cannot even reserve its heap). `cpus` needs a systemd user
/// manager with cgroup v2 delegation (`systemd-run --user --scope`);
/// without one it is not enforced, and [`command`] says so.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    pub memory_mb: Option<u64>,
    pub cpus: Option<f64>,
}

/// The command that starts a child: `program` with `args` in `cwd` with
/// exactly `env`, piped stdio, dying with the daemon, within `limits`.
/// Also what of the limits could not be applied, if anything.
pub fn command(
    program: &str,
    args: &[String],
    cwd: &Path,
    env: &std::collections::BTreeMap<String, String>,
    limits: &Limits,
) -> (Command, Option<String>) {
    let mut unenforced = None;
    let mut cmd = match limits.cpus {
        Some(cpus) if platform::user_scopes() => {
            let mut c = Command::new("systemd-run");
            c.args(["--user", "--scope", "--quiet", "--collect"])
                .arg(format!(
                    "--property=CPUQuota={}%",
                    (cpus * 100.0).round() as u64
                ));
            if let Some(mb) = limits.memory_mb {
                c.arg(format!("--property=MemoryMax={mb}M"));
            }
            c.arg("--").arg(program).args(args);
            c
        }
        Some(_) => {
            unenforced = Some(
                "cpus is not enforced: no systemd user manager to run the server in a scope".into(),
            );
            let mut c = Command::new(program);
            c.args(args);
            c
        }
        None => {
            let mut c = Command::new(program);
            c.args(args);
            c
        }
    };
    cmd.current_dir(cwd)
        .env_clear()
        .envs(env)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(mb) = limits.memory_mb {
        platform::limit_data(&mut cmd, mb.saturating_mul(1 << 20));
    }
    platform::die_with_parent(&mut cmd);
    (cmd, unenforced)
}
