//! `make demo`: three scripted MCP clients start `mcpshare run -- fixture`
//! at the same moment in a scratch home, and all find the same upstream
//! process. It prints what happens, then stops everything it started.
//! Usage: demo MCPSHARE FIXTURE

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

struct Client {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Client {
    fn start(mcpshare: &str, fixture: &str, home: &std::path::Path) -> Client {
        let mut child = Command::new(mcpshare)
            .args(["run", "--", fixture])
            .env("MCPSHARE_HOME", home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start mcpshare run");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Client {
            child,
            stdin,
            lines,
        }
    }

    fn send(&mut self, msg: Value) {
        writeln!(self.stdin, "{msg}").expect("write to mcpshare run");
    }

    fn ask(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .expect("an answer within 20 s");
            let msg: Value = serde_json::from_str(&line).expect("one JSON message per line");
            if msg["id"] == json!(id) {
                return msg;
            }
        }
    }

    fn tool(&mut self, id: u64, name: &str, args: Value) -> String {
        let r = self.ask(id, "tools/call", json!({"name": name, "arguments": args}));
        r.pointer("/result/content/0/text")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    }
}

/// Stops the scratch daemon and removes the scratch home, even on a panic.
struct Scratch {
    mcpshare: String,
    home: std::path::PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new(&self.mcpshare)
            .arg("stop")
            .env("MCPSHARE_HOME", &self.home)
            .output();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: demo MCPSHARE FIXTURE");
        std::process::exit(2);
    }
    let (mcpshare, fixture) = (&args[1], &args[2]);
    let home = std::env::temp_dir().join(format!("mcpshare-demo-{}", std::process::id()));
    let _scratch = Scratch {
        mcpshare: mcpshare.clone(),
        home: home.clone(),
    };
    println!("scratch home: {}", home.display());
    println!("starting 3 clients, each configured as: mcpshare run -- {fixture}\n");
    let mut clients: Vec<Client> = (0..3)
        .map(|_| Client::start(mcpshare, fixture, &home))
        .collect();
    let mut pids = Vec::new();
    for (i, c) in clients.iter_mut().enumerate() {
        let n = i + 1;
        let init = c.ask(
            0,
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": format!("demo-client-{n}"), "version": "1"}}),
        );
        c.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        let server = init
            .pointer("/result/serverInfo/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let echo = c.tool(1, "echo", json!({"text": format!("hello from client {n}")}));
        let pid: u32 = c.tool(2, "pid", json!({})).parse().unwrap_or(0);
        println!("client {n}: initialized with {server}; echo -> {echo:?}; upstream pid {pid}");
        pids.push(pid);
    }
    let status = Command::new(mcpshare)
        .arg("status")
        .env("MCPSHARE_HOME", &home)
        .output()
        .expect("status");
    println!(
        "\n$ mcpshare status\n{}",
        String::from_utf8_lossy(&status.stdout)
    );
    for mut c in clients {
        drop(c.stdin);
        let _ = c.child.wait();
    }
    let stop = Command::new(mcpshare)
        .arg("stop")
        .env("MCPSHARE_HOME", &home)
        .output()
        .expect("stop");
    print!("$ mcpshare stop\n{}", String::from_utf8_lossy(&stop.stdout));
    if pids.iter().all(|p| *p == pids[0] && *p != 0) {
        println!("\n3 clients shared 1 upstream process (pid {}).", pids[0]);
    } else {
        panic!("clients saw different upstreams: {pids:?}");
    }
}
