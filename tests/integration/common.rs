//! Test harness: a temp MCPSHARE_HOME whose guard stops the daemon by its
//! recorded pid, bridges driven over pipes with deadline-bounded reads, and
//! process checks by pid (never by name).

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mcpshare");
pub const WAIT: Duration = Duration::from_secs(20);

pub fn fixture() -> PathBuf {
    let p = Path::new(BIN)
        .parent()
        .unwrap()
        .join("examples")
        .join("fixture");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fixture.rs");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    assert!(
        modified(&p).is_some() && modified(&p) >= modified(&src),
        "the fixture at {} is missing or older than its source: run `cargo test --all-targets` \
         (make test), which builds examples, or `cargo build --examples`",
        p.display()
    );
    p
}

/// Poll `f` until it holds or the deadline passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Alive and not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

/// A well-formed manifest naming `pid`: version 0.1.0, protocol 1,
/// executable "x"; a test changes what it needs before writing it.
pub fn manifest_naming(pid: u32, start_time: u64, port: u16) -> Value {
    json!({"schema": 1, "version": "0.1.0", "protocol": 1, "pid": pid, "start_time": start_time,
        "port": port, "url": format!("http://127.0.0.1:{port}"), "token": "ab".repeat(32),
        "started_at": 0, "heartbeat_at": 0, "exe": "x"})
}

/// The pid of a process that has exited and been reaped.
pub fn dead_pid() -> u32 {
    let mut dead = Command::new("true").spawn().unwrap();
    let pid = dead.id();
    dead.wait().unwrap();
    pid
}

pub fn signal(pid: u32, sig: i32) {
    assert!(pid > 1);
    // SAFETY: plain kill(2) on a pid this test started or recorded.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub struct TestHome {
    pub dir: PathBuf,
    /// Upstream pids seen, checked dead when the guard drops.
    pub seen_upstreams: std::sync::Mutex<Vec<u32>>,
}

impl TestHome {
    pub fn new(name: &str) -> TestHome {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("mcpshare-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TestHome {
            dir,
            seen_upstreams: Default::default(),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env("MCPSHARE_HOME", &self.dir)
            .env("MCPSHARE_CONFIG", self.config_path());
        c
    }

    /// This home's mcpshare config (MCPSHARE_CONFIG of every command).
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("etc").join("config.json")
    }

    /// Write the config with these `mcpServers`, as a user would.
    pub fn write_config(&self, servers: Value) {
        let path = self.config_path();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = serde_json::to_string_pretty(&json!({"mcpServers": servers})).unwrap();
        std::fs::write(&path, text).unwrap();
    }

    /// `mcpshare run [flags] NAME` (a configured server), not initialized.
    pub fn named(&self, name: &str, flags: &[&str]) -> Bridge {
        let mut c = self.cmd();
        c.arg("run").args(flags).arg(name);
        Bridge::spawn(c)
    }

    /// [`TestHome::named`], initialized, its upstream's pid recorded.
    pub fn named_client(&self, name: &str) -> (Bridge, u32) {
        let mut b = self.named(name, &[]);
        b.initialize();
        let up = b.upstream_pid(json!("upstream-pid"));
        self.seen_upstreams.lock().unwrap().push(up);
        (b, up)
    }

    pub fn mcpshare(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(args).stdin(Stdio::null());
        run_bounded(c, WAIT)
    }

    pub fn write_manifest(&self, m: &Value) {
        std::fs::write(self.dir.join("daemon.json"), m.to_string()).unwrap();
    }

    /// Hold the daemon lock as a live daemon would, until the file drops.
    pub fn hold_daemon_lock(&self) -> std::fs::File {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("daemon.lock"))
            .unwrap();
        lock.try_lock().unwrap();
        lock
    }

    pub fn manifest(&self) -> Option<Value> {
        serde_json::from_slice(&std::fs::read(self.dir.join("daemon.json")).ok()?).ok()
    }

    pub fn daemon_pid(&self) -> Option<u32> {
        self.manifest()
            .and_then(|m| m["pid"].as_u64())
            .map(|p| p as u32)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// How many daemons ever started in this home (each logs one line).
    pub fn daemons_started(&self) -> usize {
        self.log().matches("daemon started:").count()
    }

    pub fn status(&self) -> Value {
        let out = self.mcpshare(&["status", "--json"]);
        assert!(
            out.status.success(),
            "status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status --json is JSON")
    }

    /// A bridge, initialized; its upstream's pid is recorded for the
    /// leak check when this home drops.
    pub fn client(&self) -> (Bridge, u32) {
        self.client_with(json!({}))
    }

    /// [`TestHome::client`], with extra environment for `mcpshare run`
    /// (and so for the daemon it starts and the upstream).
    pub fn client_env(&self, env: &[(&str, &str)]) -> (Bridge, u32) {
        let mut b = self.bridge_with(&[], env);
        b.initialize();
        let up = b.upstream_pid(json!("upstream-pid"));
        self.seen_upstreams.lock().unwrap().push(up);
        (b, up)
    }

    /// [`TestHome::client`], declaring these client capabilities.
    pub fn client_with(&self, capabilities: Value) -> (Bridge, u32) {
        let mut b = self.bridge(&[]);
        b.initialize_with(capabilities);
        let up = b.upstream_pid(json!("upstream-pid"));
        self.seen_upstreams.lock().unwrap().push(up);
        (b, up)
    }

    /// Start a `sleep` call of `ms` on `b` and wait until the daemon has it
    /// in flight (the only call in flight on the first upstream).
    pub fn sleep_in_flight(&self, b: &mut Bridge, id: Value, ms: u64) {
        b.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "sleep", "arguments": {"ms": ms}}}));
        assert!(
            wait_until(WAIT, || self.status()["upstreams"][0]["inflight"]
                == json!(1)),
            "the sleep call never reached the upstream"
        );
    }

    pub fn bridge(&self, args: &[&str]) -> Bridge {
        self.bridge_with(args, &[])
    }

    /// `mcpshare run [flags] -- fixture` with extra environment.
    pub fn bridge_with(&self, flags: &[&str], env: &[(&str, &str)]) -> Bridge {
        let mut c = self.cmd();
        c.arg("run").args(flags).arg("--").arg(fixture());
        for (k, v) in env {
            c.env(k, v);
        }
        Bridge::spawn(c)
    }
}

impl Drop for TestHome {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- daemon log of {} ---\n{}",
                self.dir.display(),
                self.log()
            );
        }
        if let Some(m) = self.manifest() {
            let pid = m["pid"].as_u64().unwrap_or(0) as u32;
            let start = m["start_time"].as_u64().unwrap_or(0);
            let ours = mcpshare::platform::start_time(pid) == Some(start);
            // A test may forge a manifest naming itself; never signal ourselves.
            if pid > 1 && pid != std::process::id() && ours && pid_alive(pid) {
                signal(pid, libc::SIGTERM);
                if !wait_until(Duration::from_secs(15), || !pid_alive(pid)) {
                    signal(pid, libc::SIGKILL);
                }
            }
        }
        for pid in self.seen_upstreams.lock().unwrap().iter() {
            let gone = wait_until(Duration::from_secs(5), || !pid_alive(*pid));
            if !gone {
                signal(*pid, libc::SIGKILL);
                if !std::thread::panicking() {
                    panic!("upstream pid {pid} outlived its daemon");
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `mcpshare mcp [flags]` (the hub), initialized.
pub fn hub(home: &TestHome, flags: &[&str]) -> Bridge {
    let mut c = home.cmd();
    c.arg("mcp").args(flags);
    let mut b = Bridge::spawn(c);
    let r = b.initialize();
    assert_eq!(r["result"]["serverInfo"]["name"], "mcpshare", "{r}");
    b
}

/// Every tool name of the hub's list (in one page: no page size asked).
pub fn tool_names(b: &mut Bridge, id: &str) -> Vec<String> {
    let r = b.request(json!(id), "tools/list", json!({}));
    assert!(r["result"].get("nextCursor").is_none(), "{r}");
    r["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// A config entry for the fixture server, with these extra keys.
pub fn fixture_entry(extra: Value) -> Value {
    let mut v = json!({"command": fixture().display().to_string()});
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v
}

/// Configured server `name` as `status --json` shows it, or null.
pub fn server_status(home: &TestHome, name: &str) -> Value {
    home.status()["config"]["servers"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

/// Does `program args` run here? If not, says the test skips it.
pub fn available(program: &str, args: &[&str]) -> bool {
    let ok = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: '{program} {}' does not run here", args.join(" "));
    }
    ok
}

/// Run a command to completion, killing it (by pid) if it overruns.
pub fn run_bounded(mut c: Command, timeout: Duration) -> Output {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            signal(pid, libc::SIGKILL);
            panic!("command did not finish within {timeout:?}");
        }
    }
}

pub struct Bridge {
    pub child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<String>,
    /// Messages received but not yet asked for.
    pub backlog: Vec<Value>,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Bridge {
    pub fn spawn(mut c: Command) -> Bridge {
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mcpshare run");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let err2 = err.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut e = err2.lock().unwrap();
                e.push_str(&line);
                e.push('\n');
            }
        });
        let stdin = child.stdin.take();
        Bridge {
            child,
            stdin,
            rx,
            backlog: Vec::new(),
            stderr: err,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn send_raw(&mut self, line: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    pub fn send(&mut self, msg: &Value) {
        self.send_raw(&serde_json::to_vec(msg).unwrap());
    }

    /// The next raw line of stdout.
    pub fn recv_line(&mut self, timeout: Duration) -> Option<String> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next message from stdout, which must be exactly one JSON value per line.
    pub fn recv(&mut self, timeout: Duration) -> Option<Value> {
        match self.rx.recv_timeout(timeout) {
            Ok(line) => Some(
                serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}")),
            ),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Wait for the response with this id; other messages go to the backlog.
    pub fn response(&mut self, id: &Value, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        if let Some(i) = self.backlog.iter().position(|m| is_response_to(m, id)) {
            return self.backlog.remove(i);
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(m) = self.recv(left) else {
                panic!(
                    "no response to id {id} within {timeout:?}; stderr:\n{}",
                    self.stderr.lock().unwrap()
                );
            };
            if is_response_to(&m, id) {
                return m;
            }
            self.backlog.push(m);
        }
    }

    /// Read into the backlog until a message satisfies `pred`; that message.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.backlog.iter().position(&pred) {
                return Some(self.backlog.remove(i));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self.recv(left)?;
            self.backlog.push(m);
        }
    }

    /// Messages of this method received so far (read for `settle` first).
    pub fn count_method(&mut self, method: &str, settle: Duration) -> usize {
        while let Some(m) = self.recv(settle) {
            self.backlog.push(m);
        }
        self.backlog
            .iter()
            .filter(|m| m["method"] == json!(method))
            .count()
    }

    pub fn request(&mut self, id: Value, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.response(&id, WAIT)
    }

    /// Send `initialize` expecting an error; the error's message.
    pub fn initialize_error(&mut self) -> String {
        let r = self.request(json!(0), "initialize", init_params(json!({})));
        r["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("want an error: {r}"))
            .to_string()
    }

    pub fn initialize(&mut self) -> Value {
        self.initialize_with(json!({}))
    }

    pub fn initialize_with(&mut self, capabilities: Value) -> Value {
        let r = self.request(json!(0), "initialize", init_params(capabilities));
        assert!(r.get("result").is_some(), "initialize failed: {r}");
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        r
    }

    pub fn call(&mut self, id: Value, tool: &str, args: Value) -> Value {
        self.request(id, "tools/call", json!({"name": tool, "arguments": args}))
    }

    /// The text of a successful tool result.
    pub fn call_text(&mut self, id: Value, tool: &str, args: Value) -> String {
        let r = self.call(id, tool, args);
        text_of(&r).unwrap_or_else(|| panic!("tool {tool} failed: {r}"))
    }

    /// The upstream's pid, asked of the upstream itself.
    pub fn upstream_pid(&mut self, id: Value) -> u32 {
        self.call_text(id, "pid", json!({})).parse().unwrap()
    }

    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Wait (bounded) for the bridge to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stdin.take();
        if self.wait_exit(Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The params of a test client's `initialize`.
pub fn init_params(capabilities: Value) -> Value {
    json!({"protocolVersion": "2025-06-18", "capabilities": capabilities,
           "clientInfo": {"name": "mcpshare-test", "version": "1"}})
}

pub fn is_response_to(m: &Value, id: &Value) -> bool {
    m.get("method").is_none() && m.get("id") == Some(id)
}

pub fn text_of(r: &Value) -> Option<String> {
    r.pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .map(str::to_string)
}
