//! `make bench`: measures mcpshare against the fixture server run directly,
//! in one process, and prints a table and a JSON file of results. Every
//! target is a ratio against a baseline measured in the same run, because
//! these machines are noisy.
//!
//! Usage: bench MCPSHARE FIXTURE [--json PATH] [--quick] [--label NAME]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

struct Client {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
    next: u64,
}

impl Client {
    fn start(mut cmd: Command) -> Client {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Client {
            child,
            stdin,
            out,
            next: 1,
        }
    }

    fn send(&mut self, msg: &Value) {
        let mut line = serde_json::to_vec(msg).unwrap();
        line.push(b'\n');
        self.stdin.write_all(&line).expect("write");
    }

    /// Is there output to read within `timeout`?
    fn readable(&self, timeout: Duration) -> bool {
        use std::os::fd::AsRawFd;
        if !self.out.buffer().is_empty() {
            return true;
        }
        let mut p = libc::pollfd {
            fd: self.out.get_ref().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd, its count 1.
        #[allow(unsafe_code)]
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        n > 0
    }

    /// Send a request and read lines until its answer (within a minute).
    fn ask(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut line = String::new();
        loop {
            line.clear();
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(self.readable(left), "no answer to {method} within 60 s");
            if self.out.read_line(&mut line).expect("read") == 0 {
                panic!("server closed stdout");
            }
            let v: Value = serde_json::from_str(&line).expect("json");
            if v["id"] == json!(id) {
                return v;
            }
        }
    }

    fn initialize(&mut self) {
        let r = self.ask(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}),
        );
        assert!(r.get("result").is_some(), "initialize failed: {r}");
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    }

    fn echo(&mut self) -> Duration {
        self.call("echo")
    }

    /// Round trip of one call of `tool` (an echo of "x").
    fn call(&mut self, tool: &str) -> Duration {
        let t = Instant::now();
        let r = self.ask(
            "tools/call",
            json!({"name": tool, "arguments": {"text": "x"}}),
        );
        let d = t.elapsed();
        assert!(r.get("result").is_some(), "call failed: {r}");
        d
    }

    /// The text of a call's first content item.
    fn call_text(&mut self, tool: &str) -> String {
        let r = self.ask("tools/call", json!({"name": tool, "arguments": {}}));
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("call of {tool} failed: {r}"))
            .to_string()
    }

    /// tools/list, every page: the tools' names.
    fn tool_names(&mut self) -> Vec<String> {
        let mut names = Vec::new();
        let mut params = json!({});
        loop {
            let r = self.ask("tools/list", params);
            let tools = r["result"]["tools"]
                .as_array()
                .unwrap_or_else(|| panic!("tools/list failed: {r}"));
            names.extend(
                tools
                    .iter()
                    .map(|t| t["name"].as_str().unwrap_or("").to_string()),
            );
            match r["result"]["nextCursor"].as_str() {
                Some(c) => params = json!({"cursor": c}),
                None => return names,
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn close(mut self) {
        drop(self.stdin);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch MCPSHARE_HOME whose daemon is stopped when dropped, and
/// maybe a config file (MCPSHARE_CONFIG) beside it.
struct Home {
    mcpshare: PathBuf,
    dir: PathBuf,
    config: Option<PathBuf>,
}

impl Home {
    fn new(mcpshare: &Path, name: &str) -> Home {
        let dir =
            std::env::temp_dir().join(format!("mcpshare-bench-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Home {
            mcpshare: mcpshare.into(),
            dir,
            config: None,
        }
    }
    /// A home whose daemon serves the configured servers of `config`.
    fn with_config(mcpshare: &Path, name: &str, config: &Value) -> Home {
        let mut home = Home::new(mcpshare, name);
        let path = home.dir.with_extension("config.json");
        std::fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).expect("config");
        home.config = Some(path);
        home
    }
    /// `mcpshare ARGS` in this home (and with its config).
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.mcpshare);
        c.args(args).env("MCPSHARE_HOME", &self.dir);
        if let Some(config) = &self.config {
            c.env("MCPSHARE_CONFIG", config);
        }
        c
    }
    fn bridge(&self, fixture: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(&self.mcpshare);
        c.arg("run")
            .arg("--")
            .arg(fixture)
            .args(args)
            .env("MCPSHARE_HOME", &self.dir);
        c
    }
    fn daemon_pid(&self) -> u32 {
        let m: Value =
            serde_json::from_slice(&std::fs::read(self.dir.join("daemon.json")).expect("manifest"))
                .unwrap();
        m["pid"].as_u64().unwrap() as u32
    }
    fn daemons_started(&self) -> usize {
        std::fs::read_to_string(self.dir.join("daemon.log"))
            .unwrap_or_default()
            .matches("daemon started:")
            .count()
    }
    fn stop(&self) {
        let _ = self.command(&["stop"]).output();
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(config) = &self.config {
            let _ = std::fs::remove_file(config);
        }
    }
}

fn direct(fixture: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(fixture);
    c.args(args);
    c
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[((s.len() - 1) as f64 * p).round() as usize]
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 0.5)
}

/// Echo bytes from `r` back on `w` until either side closes.
fn echo(mut r: impl Read, mut w: impl Write) {
    let mut b = [0u8; 1];
    while r.read_exact(&mut b).is_ok() {
        if w.write_all(&b).is_err() {
            break;
        }
    }
}

/// Median round trip of one byte written to `w` and echoed back on `r`.
fn round_trips(n: usize, mut w: impl Write, mut r: impl Read) -> f64 {
    let mut times = Vec::with_capacity(n);
    let mut b = [7u8; 1];
    for _ in 0..n {
        let t = Instant::now();
        w.write_all(&b).unwrap();
        r.read_exact(&mut b).unwrap();
        times.push(micros(t.elapsed()));
    }
    median(&times)
}

/// Round trip of one byte between two threads over two pipes.
fn pipe_rtt(n: usize) -> f64 {
    let (r1, w1) = std::io::pipe().unwrap();
    let (r2, w2) = std::io::pipe().unwrap();
    let echoer = std::thread::spawn(move || echo(r1, w2));
    let rtt = round_trips(n, w1, r2);
    let _ = echoer.join();
    rtt
}

/// Round trip of one byte between two threads over loopback TCP.
fn tcp_rtt(n: usize) -> f64 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let echoer = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        echo(s.try_clone().unwrap(), s);
    });
    let s = std::net::TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let rtt = round_trips(n, s.try_clone().unwrap(), s);
    let _ = echoer.join();
    rtt
}

fn stat_field(pid: u32, name: &str) -> u64 {
    stat_field_at(&format!("/proc/{pid}/status"), name)
}

fn stat_field_at(path: &str, name: &str) -> u64 {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Times any thread of `pid` went to sleep waiting for something
/// (voluntary context switches, summed over its threads): each is a wake-up
/// later, the cost that dominates a relay on a virtual machine.
fn sleeps(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .map(|t| {
            let tid = t.file_name().to_string_lossy().parse().unwrap_or(0);
            stat_field_at(
                &format!("/proc/{pid}/task/{tid}/status"),
                "voluntary_ctxt_switches:",
            )
        })
        .sum()
}

/// Resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    stat_field(pid, "VmRSS:")
}

/// CPU time (user + system, all threads) in microseconds.
fn cpu_micros(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = &stat[stat.rfind(')').map(|i| i + 1).unwrap_or(0)..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // SAFETY: sysconf has no preconditions.
    #[allow(unsafe_code)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 * 1e6 / hz
}

fn throughput(clients: Vec<Client>, for_: Duration) -> f64 {
    let deadline = Instant::now() + for_;
    let threads: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    c.echo();
                    n += 1;
                }
                c.close();
                n
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    total as f64 / for_.as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: bench MCPSHARE FIXTURE [--json PATH] [--quick] [--label NAME]");
        std::process::exit(2);
    }
    let mcpshare = PathBuf::from(&args[1])
        .canonicalize()
        .expect("mcpshare binary");
    let fixture = PathBuf::from(&args[2])
        .canonicalize()
        .expect("fixture binary");
    let quick = args.iter().any(|a| a == "--quick");
    let json_path = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let label = args
        .iter()
        .position(|a| a == "--label")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_default();
    let scale = if quick { 1 } else { 4 };
    let mut results = json!({"mcpshare": mcpshare.display().to_string(), "label": label});
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    let mut row = |what: &str, value: String, target: &str, verdict: &str| {
        rows.push((what.into(), value, target.into(), verdict.into()));
    };
    let pass = |ok: bool| if ok { "met" } else { "MISSED" };

    // 1. Floors and per-call latency, interleaved.
    let pipe = pipe_rtt(2000 * scale);
    let tcp = tcp_rtt(2000 * scale);
    let home = Home::new(&mcpshare, "latency");
    let mut shared = Client::start(home.bridge(&fixture, &[]));
    shared.initialize();
    let mut own = Client::start(direct(&fixture, &[]));
    own.initialize();
    for _ in 0..200 {
        shared.echo();
        own.echo();
    }
    let (mut via, mut dir) = (Vec::new(), Vec::new());
    for _ in 0..500 * scale {
        via.push(micros(shared.echo()));
        dir.push(micros(own.echo()));
    }
    let added = median(&via) - median(&dir);
    let floor = pipe + tcp;
    results["latency_us"] = json!({
        "pipe_rtt_p50": pipe, "tcp_rtt_p50": tcp,
        "direct_p50": median(&dir), "direct_p99": percentile(&dir, 0.99),
        "mcpshare_p50": median(&via), "mcpshare_p99": percentile(&via, 0.99),
        "added_p50": added, "added_over_floor": added / floor,
    });
    row(
        "pipe / TCP round trip p50",
        format!("{pipe:.0} / {tcp:.0} µs"),
        "floor",
        "",
    );
    row(
        "direct call p50 / p99",
        format!("{:.0} / {:.0} µs", median(&dir), percentile(&dir, 0.99)),
        "baseline",
        "",
    );
    row(
        "mcpshare call p50 / p99",
        format!("{:.0} / {:.0} µs", median(&via), percentile(&via, 0.99)),
        "",
        "",
    );
    row(
        "added p50 ÷ (pipe+TCP)",
        format!("{:.2}× ({added:.0} µs)", added / floor),
        "≤ 1.25×",
        pass(added <= 1.25 * floor),
    );

    // 2. CPU per call.
    let daemon = home.daemon_pid();
    let n = 2000 * scale;
    let (d0, b0) = (cpu_micros(daemon), cpu_micros(shared.pid()));
    let (ds0, bs0) = (sleeps(daemon), sleeps(shared.pid()));
    for _ in 0..n {
        shared.echo();
    }
    let (d1, b1) = (cpu_micros(daemon), cpu_micros(shared.pid()));
    let (ds1, bs1) = (sleeps(daemon), sleeps(shared.pid()));
    let (dcpu, bcpu) = ((d1 - d0) / n as f64, (b1 - b0) / n as f64);
    let (dsl, bsl) = ((ds1 - ds0) as f64 / n as f64, (bs1 - bs0) as f64 / n as f64);
    results["cpu_us_per_call"] = json!({"daemon": dcpu, "bridge": bcpu, "calls": n});
    results["sleeps_per_call"] = json!({"daemon": dsl, "bridge": bsl, "calls": n});
    row(
        "CPU per call: daemon / bridge",
        format!("{dcpu:.1} / {bcpu:.1} µs"),
        "as small as possible",
        "",
    );
    row(
        "thread sleeps per call: daemon / bridge",
        format!("{dsl:.2} / {bsl:.2}"),
        "as few as possible",
        "",
    );
    shared.close();
    own.close();
    drop(home);

    // 3. Throughput, shared vs each client with its own server.
    let window = Duration::from_millis(if quick { 700 } else { 2000 });
    let mut tp = serde_json::Map::new();
    for n in [1usize, 8, 32] {
        let home = Home::new(&mcpshare, &format!("tp{n}"));
        let mut clients: Vec<Client> = (0..n)
            .map(|_| Client::start(home.bridge(&fixture, &[])))
            .collect();
        clients.iter_mut().for_each(Client::initialize);
        let s = throughput(clients, window);
        let mut clients: Vec<Client> = (0..n)
            .map(|_| Client::start(direct(&fixture, &[])))
            .collect();
        clients.iter_mut().for_each(Client::initialize);
        let d = throughput(clients, window);
        tp.insert(
            n.to_string(),
            json!({"shared_calls_per_s": s, "direct_calls_per_s": d, "ratio": s / d}),
        );
        let target = if n == 1 { "" } else { "≥ 0.5×" };
        let verdict = if n == 1 { "" } else { pass(s >= 0.5 * d) };
        row(
            &format!("throughput, {n} clients: shared / direct"),
            format!("{s:.0} / {d:.0} calls/s ({:.2}×)", s / d),
            target,
            verdict,
        );
    }
    results["throughput"] = Value::Object(tp);

    // 4. Cold start and warm attach, minus the server started directly.
    let runs = if quick { 3 } else { 7 };
    let init_time = |cmd: Command| {
        let t = Instant::now();
        let mut c = Client::start(cmd);
        c.initialize();
        let d = t.elapsed();
        c.close();
        micros(d) / 1000.0
    };
    let (mut cold, mut plain, mut warm) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let home = Home::new(&mcpshare, &format!("cold{i}"));
        cold.push(init_time(home.bridge(&fixture, &[])));
        plain.push(init_time(direct(&fixture, &[])));
    }
    let home = Home::new(&mcpshare, "warm");
    let mut keeper = Client::start(home.bridge(&fixture, &[]));
    keeper.initialize();
    for _ in 0..runs * 2 {
        warm.push(init_time(home.bridge(&fixture, &[])));
    }
    keeper.close();
    drop(home);
    let (cold_over, warm_over) = (
        median(&cold) - median(&plain),
        median(&warm) - median(&plain),
    );
    results["startup_ms"] = json!({"direct_p50": median(&plain), "cold_p50": median(&cold), "warm_p50": median(&warm),
        "cold_overhead": cold_over, "warm_overhead": warm_over});
    row(
        "initialize, server started directly",
        format!("{:.1} ms", median(&plain)),
        "baseline",
        "",
    );
    row(
        "cold start overhead (no daemon)",
        format!("{cold_over:.1} ms"),
        "≤ 30 ms",
        pass(cold_over <= 30.0),
    );
    row(
        "warm attach overhead",
        format!("{warm_over:.1} ms"),
        "≤ 5 ms",
        pass(warm_over <= 5.0),
    );

    // 5. Memory.
    let home = Home::new(&mcpshare, "memory");
    let mut daemon_cmd = Command::new(&mcpshare);
    daemon_cmd
        .arg("daemon")
        .env("MCPSHARE_HOME", &home.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut d = daemon_cmd.spawn().expect("daemon");
    let mut ready = String::new();
    BufReader::new(d.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    let idle = rss_kib(d.id());
    let mut one = Client::start(home.bridge(&fixture, &[]));
    one.initialize();
    one.echo();
    let with1 = rss_kib(d.id());
    let mut many: Vec<Client> = (0..31)
        .map(|_| Client::start(home.bridge(&fixture, &[])))
        .collect();
    for c in many.iter_mut() {
        c.initialize();
        c.echo();
    }
    let with32 = rss_kib(d.id());
    let per_session = (with32 as f64 - with1 as f64) / 31.0;
    let bridge = rss_kib(one.pid());
    let upstream_pid: u32 = one.ask("tools/call", json!({"name": "pid", "arguments": {}}))["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let server = rss_kib(upstream_pid);
    many.into_iter().for_each(Client::close);
    one.close();
    home.stop();
    let _ = d.wait();
    drop(home);
    // N clients × S servers: through mcpshare versus each client starting its own.
    let (nc, ns) = (4usize, 3usize);
    let home = Home::new(&mcpshare, "fleet");
    let mut fleet = Vec::new();
    for _ in 0..nc {
        for s in 0..ns {
            let mut c = Client::start(home.bridge(&fixture, &[&format!("--server={s}")]));
            c.initialize();
            fleet.push(c);
        }
    }
    let status = Command::new(&mcpshare)
        .args(["status", "--json"])
        .env("MCPSHARE_HOME", &home.dir)
        .output()
        .unwrap();
    let st: Value = serde_json::from_slice(&status.stdout).unwrap();
    let ups: u64 = st["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| rss_kib(u["pid"].as_u64().unwrap() as u32))
        .sum();
    let via_total =
        rss_kib(home.daemon_pid()) + ups + fleet.iter().map(|c| rss_kib(c.pid())).sum::<u64>();
    fleet.into_iter().for_each(Client::close);
    drop(home);
    let mut own: Vec<Client> = (0..nc * ns)
        .map(|_| Client::start(direct(&fixture, &[])))
        .collect();
    own.iter_mut().for_each(Client::initialize);
    let direct_total: u64 = own.iter().map(|c| rss_kib(c.pid())).sum();
    own.into_iter().for_each(Client::close);
    results["memory_kib"] = json!({"daemon_idle": idle, "daemon_1_session": with1, "daemon_32_sessions": with32,
        "per_session": per_session, "bridge": bridge, "fixture_server": server,
        "fleet": {"clients": nc, "servers": ns, "via_mcpshare": via_total, "direct": direct_total}});
    row(
        "daemon RSS idle",
        format!("{:.1} MiB", idle as f64 / 1024.0),
        "≤ 5 MiB",
        pass(idle <= 5 * 1024),
    );
    row(
        "daemon RSS per session",
        format!("{per_session:.0} KiB"),
        "≤ 64 KiB",
        pass(per_session <= 64.0),
    );
    row(
        "bridge RSS",
        format!("{:.1} MiB", bridge as f64 / 1024.0),
        "≤ 2 MiB",
        pass(bridge <= 2 * 1024),
    );
    row(
        &format!("{nc} clients × {ns} servers, total RSS"),
        format!(
            "{:.1} MiB via mcpshare / {:.1} MiB direct",
            via_total as f64 / 1024.0,
            direct_total as f64 / 1024.0
        ),
        &format!("fixture server is {:.1} MiB", server as f64 / 1024.0),
        "",
    );

    // 6. Election: 64 clients at once on a cold home.
    let home = Home::new(&mcpshare, "election");
    let n = if quick { 16 } else { 64 };
    let t = Instant::now();
    let mut clients: Vec<Client> = (0..n)
        .map(|_| Client::start(home.bridge(&fixture, &[])))
        .collect();
    for c in clients.iter_mut() {
        c.send(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "b", "version": "1"}}}));
    }
    for c in clients.iter_mut() {
        let mut line = String::new();
        c.out.read_line(&mut line).unwrap();
        assert!(line.contains("\"result\""), "election: {line}");
    }
    let all_in = t.elapsed();
    let daemons = home.daemons_started();
    clients.into_iter().for_each(Client::close);
    drop(home);
    results["election"] =
        json!({"clients": n, "all_initialized_ms": micros(all_in) / 1000.0, "daemons": daemons});
    row(
        &format!("election: {n} clients at once"),
        format!("{:.0} ms, {daemons} daemon", micros(all_in) / 1000.0),
        "1 daemon",
        pass(daemons == 1),
    );

    // 7. The hub, `mcpshare mcp`, against `mcpshare run` on the same
    // configured server, in one daemon.
    let cfg = json!({"mcpServers": {"fx": {"command": fixture}}});
    let home = Home::with_config(&mcpshare, "hub", &cfg);
    let mut run = Client::start(home.command(&["run", "fx"]));
    run.initialize();
    let mut hub = Client::start(home.command(&["mcp"]));
    hub.initialize();
    let names = hub.tool_names();
    assert!(
        names.iter().any(|n| n == "fx__echo"),
        "the hub lists no fx__echo: {names:?}"
    );
    let (run_pid, hub_pid) = (run.call_text("pid"), hub.call_text("fx__pid"));
    assert_eq!(run_pid, hub_pid, "run and hub reach different servers");
    for _ in 0..200 {
        run.echo();
        hub.call("fx__echo");
    }
    let (mut by_run, mut by_hub) = (Vec::new(), Vec::new());
    for i in 0..500 * scale {
        // Alternate which goes first, so that neither always follows the other.
        if i % 2 == 0 {
            by_run.push(micros(run.echo()));
            by_hub.push(micros(hub.call("fx__echo")));
        } else {
            by_hub.push(micros(hub.call("fx__echo")));
            by_run.push(micros(run.echo()));
        }
    }
    let hub_ratio = median(&by_hub) / median(&by_run);
    row(
        "call p50 / p99: run NAME",
        format!(
            "{:.0} / {:.0} µs",
            median(&by_run),
            percentile(&by_run, 0.99)
        ),
        "baseline",
        "",
    );
    row(
        "call p50 / p99: hub (mcpshare mcp)",
        format!(
            "{:.0} / {:.0} µs ({hub_ratio:.2}×)",
            median(&by_hub),
            percentile(&by_hub, 0.99)
        ),
        "≤ 1.10× run",
        pass(hub_ratio <= 1.10),
    );
    // Memory of a hub session: the daemon before and after more sessions,
    // each initialized and listed.
    let sessions = 10;
    let hub_rss = |home: &Home, sessions: usize| {
        let daemon = home.daemon_pid();
        let before = rss_kib(daemon);
        let mut more: Vec<Client> = (0..sessions)
            .map(|_| Client::start(home.command(&["mcp"])))
            .collect();
        for c in more.iter_mut() {
            c.initialize();
            c.tool_names();
        }
        let after = rss_kib(daemon);
        more.into_iter().for_each(Client::close);
        (after as f64 - before as f64) / sessions as f64
    };
    let hub_session_1 = hub_rss(&home, sessions);
    let hub_bridge = rss_kib(hub.pid());
    let run_bridge = rss_kib(run.pid());
    run.close();
    hub.close();
    drop(home);
    // tools/list of 10 servers × 50 tools: each its own upstream (its own
    // env), each listing 50 tools over 10 pages.
    let (servers, extra) = (10usize, 38usize);
    let mut own = Client::start({
        let mut c = direct(&fixture, &[]);
        c.env("FIXTURE_EXTRA_TOOLS", extra.to_string());
        c
    });
    own.initialize();
    let per_server = own.tool_names().len();
    let direct_list: Vec<f64> = (0..50)
        .map(|_| {
            let t = Instant::now();
            own.tool_names();
            micros(t.elapsed())
        })
        .collect();
    own.close();
    let members: serde_json::Map<String, Value> = (0..servers)
        .map(|i| {
            (
                format!("s{i}"),
                json!({"command": fixture, "env": {"FIXTURE_EXTRA_TOOLS": extra.to_string(), "BENCH_SERVER": i.to_string()}}),
            )
        })
        .collect();
    let home = Home::with_config(&mcpshare, "hub10", &json!({"mcpServers": members}));
    let t = Instant::now();
    let mut hub = Client::start(home.command(&["mcp"]));
    hub.initialize();
    let hub_init = micros(t.elapsed()) / 1000.0;
    let t = Instant::now();
    let first = hub.tool_names();
    let first_list = micros(t.elapsed()) / 1000.0;
    let want = servers * per_server;
    assert_eq!(
        first.len(),
        want,
        "the hub listed {} tools, not {want}",
        first.len()
    );
    let distinct: std::collections::HashSet<&String> = first.iter().collect();
    assert_eq!(distinct.len(), want, "the hub listed a name twice");
    let status = home.command(&["status", "--json"]).output().unwrap();
    let st: Value = serde_json::from_slice(&status.stdout).unwrap();
    let upstreams = st["upstreams"].as_array().map_or(0, Vec::len);
    assert_eq!(
        upstreams, servers,
        "{servers} servers ran as {upstreams} upstreams"
    );
    let lists = if quick { 20 } else { 50 };
    let mut listed = Vec::with_capacity(lists);
    for _ in 0..lists {
        let t = Instant::now();
        let n = hub.tool_names().len();
        listed.push(micros(t.elapsed()) / 1000.0);
        assert_eq!(n, want, "the hub listed {n} tools, not {want}");
    }
    let list_p50 = median(&listed);
    let hub_session_10 = hub_rss(&home, sessions);
    hub.close();
    drop(home);
    results["hub"] = json!({
        "call_us": {"run_p50": median(&by_run), "run_p99": percentile(&by_run, 0.99),
            "hub_p50": median(&by_hub), "hub_p99": percentile(&by_hub, 0.99),
            "ratio_p50": hub_ratio, "calls": by_hub.len()},
        "memory_kib": {"daemon_per_session_1_server": hub_session_1,
            "daemon_per_session_10_servers": hub_session_10, "sessions": sessions,
            "hub_bridge": hub_bridge, "run_bridge": run_bridge},
        "tools_list_ms": {"servers": servers, "tools_per_server": per_server, "tools": want,
            "initialize": hub_init, "first": first_list, "warm_p50": list_p50,
            "warm_p99": percentile(&listed, 0.99), "lists": lists,
            "direct_one_server_p50": median(&direct_list) / 1000.0},
    });
    row(
        "hub session, daemon RSS: 1 / 10 servers",
        format!("{hub_session_1:.0} / {hub_session_10:.0} KiB"),
        "",
        "",
    );
    row(
        "hub bridge RSS (run bridge)",
        format!(
            "{:.1} MiB ({:.1} MiB)",
            hub_bridge as f64 / 1024.0,
            run_bridge as f64 / 1024.0
        ),
        "",
        "",
    );
    row(
        &format!("hub initialize, {servers} servers (cold)"),
        format!("{hub_init:.1} ms (first tools/list {first_list:.1} ms)"),
        "",
        "",
    );
    row(
        &format!("tools/list, 1 server × {per_server} tools, direct"),
        format!("p50 {:.2} ms", median(&direct_list) / 1000.0),
        "baseline",
        "",
    );
    row(
        &format!("hub tools/list, {servers} × {per_server} tools, warm"),
        format!(
            "p50 {list_p50:.2} / p99 {:.2} ms",
            percentile(&listed, 0.99)
        ),
        "< 5 ms",
        pass(list_p50 < 5.0),
    );

    // 8. Binary size.
    let size = std::fs::metadata(&mcpshare).map(|m| m.len()).unwrap_or(0);
    results["binary_bytes"] = json!(size);
    row(
        "binary size",
        format!("{:.2} MB", size as f64 / 1e6),
        "≤ 3 MB",
        pass(size <= 3_000_000),
    );

    println!("mcpshare bench {label} ({})\n", mcpshare.display());
    println!("{:<40} {:<44} {:<22} result", "measure", "value", "target");
    for (w, v, t, ok) in &rows {
        println!("{w:<40} {v:<44} {t:<22} {ok}");
    }
    if let Some(p) = json_path {
        std::fs::write(&p, serde_json::to_vec_pretty(&results).unwrap()).unwrap();
        println!("\nresults written to {p}");
    }
}
