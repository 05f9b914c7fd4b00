//! The command line: one table of commands and options feeds parsing,
//! `--help` and the man-page consistency test. `main` maps errors to the
//! exit statuses documented in mcpshare(1).

mod console;

use crate::election;
use crate::error::{Error, Result};
use crate::mux::identity::Spec;
use crate::net::client::Client;
use crate::state::home::Home;
use crate::state::lock;
use crate::{bridge, daemon, log};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub struct CommandDoc {
    pub name: &'static str,
    pub synopsis: &'static str,
    pub about: &'static str,
    pub options: &'static [(&'static str, &'static str)],
}

pub const COMMANDS: &[CommandDoc] = &[
    CommandDoc {
        name: "run",
        synopsis: "mcpshare run [--isolated] [--global] -- COMMAND [ARGS...]",
        about: "Speak MCP on stdio, sharing one upstream COMMAND with every client of the same identity",
        options: &[
            ("--isolated", "give this client an upstream of its own"),
            ("--global", "share across working directories"),
        ],
    },
    CommandDoc {
        name: "daemon",
        synopsis: "mcpshare daemon",
        about: "Run the daemon in the foreground (clients start it on their own)",
        options: &[],
    },
    CommandDoc {
        name: "status",
        synopsis: "mcpshare status [--json]",
        about: "Show the daemon and its upstreams",
        options: &[("--json", "print one JSON object")],
    },
    CommandDoc {
        name: "logs",
        synopsis: "mcpshare logs ID [-n N] [-f]",
        about: "Show the standard error of upstream ID",
        options: &[
            ("-n", "show the last N lines (default 100)"),
            ("-f", "follow: keep printing new lines"),
        ],
    },
    CommandDoc {
        name: "restart",
        synopsis: "mcpshare restart ID",
        about: "Restart upstream ID (also after it was marked crashed)",
        options: &[],
    },
    CommandDoc {
        name: "stop",
        synopsis: "mcpshare stop [--force]",
        about: "Stop the daemon and its upstreams; returns once its lock is free",
        options: &[(
            "--force",
            "signal a hung daemon's pid, after confirming its start time and executable",
        )],
    },
    console::DOC,
    CommandDoc {
        name: "doctor",
        synopsis: "mcpshare doctor [--json]",
        about: "Check the home, the daemon and every recorded process; print the fix for each problem",
        options: &[("--json", "print the checks as a JSON array")],
    },
    CommandDoc {
        name: "doctor processes",
        synopsis: "mcpshare doctor processes [--json] [--cleanup-stale-records]",
        about: "List every registry record with what the OS says of its pid now",
        options: &[
            ("--json", "print a JSON array"),
            (
                "--cleanup-stale-records",
                "remove the records of dead processes (never signals anything)",
            ),
        ],
    },
];

/// Every environment variable mcpshare reads; each is in mcpshare(1).
pub const ENVIRONMENT: &[&str] = &[
    "MCPSHARE_HOME",
    "XDG_STATE_HOME",
    "MCPSHARE_MAX_MESSAGE_BYTES",
    "MCPSHARE_START_TIMEOUT_SECS",
    "MCPSHARE_REQUEST_TIMEOUT_SECS",
    "MCPSHARE_PING_EVERY_MS",
    "MCPSHARE_UPSTREAM_IDLE_MS",
    "MCPSHARE_DAEMON_IDLE_SECS",
    "MCPSHARE_HEAD_TIMEOUT_MS",
    "MCPSHARE_BODY_TIMEOUT_MS",
    "MCPSHARE_WATCHDOG_MS",
    "MCPSHARE_LOG_MAX_BYTES",
    "MCPSHARE_SESSION_IDLE_SECS",
    "MCPSHARE_TEST_REPORTED_VERSION",
];

const STOP_TIMEOUT: Duration = Duration::from_secs(20);

pub fn help() -> String {
    let mut s = format!(
        "mcpshare {} - share one set of MCP servers among every MCP client\n\nUsage:\n",
        env!("CARGO_PKG_VERSION")
    );
    for c in COMMANDS {
        s.push_str(&format!("  {}\n      {}\n", c.synopsis, c.about));
        for (flag, what) in c.options {
            s.push_str(&format!("      {flag:<12} {what}\n"));
        }
    }
    s.push_str(
        "  mcpshare help [COMMAND] | --help | -h | --version | -V\n\n\
         Every command also takes --help (or -h) for its own usage.\n\
         See mcpshare(1) for files, environment and exit status.\n",
    );
    s
}

/// The usage of one command (`mcpshare CMD --help`, `mcpshare help CMD`);
/// `help doctor` also shows `doctor processes`.
pub fn command_help(name: &str) -> String {
    let mut s = String::new();
    for c in COMMANDS.iter().filter(|c| {
        c.name == name
            || c.name
                .strip_prefix(name)
                .is_some_and(|r| r.starts_with(' '))
    }) {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(&format!("Usage: {}\n\n{}\n", c.synopsis, c.about));
        s.push_str("\nOptions:\n");
        let options = c
            .options
            .iter()
            .chain([&("-h, --help", "print this usage")]);
        let width = options.clone().map(|o| o.0.len()).max().unwrap_or(0);
        for (flag, what) in options {
            s.push_str(&format!("  {flag:<width$}  {what}\n"));
        }
    }
    s.push_str("\nSee mcpshare(1) for the details.\n");
    s
}

pub fn main() -> i32 {
    match run_cli() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mcpshare: {e}");
            if let Some(h) = e.hint() {
                eprintln!("hint: {h}");
            }
            e.exit_code()
        }
    }
}

/// One command line, parsed: what `--help` and mcpshare(1) promise, checked
/// against the table above by the tests below.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// The usage of every command, or of one (by its name in `COMMANDS`).
    Help {
        command: Option<&'static str>,
    },
    /// Usage to print on stderr with exit status 2: a command given
    /// without what it needs.
    Usage {
        command: &'static str,
        problem: String,
        hint: &'static str,
    },
    Version,
    Run {
        isolated: bool,
        global: bool,
        argv: Vec<String>,
    },
    Daemon,
    Status {
        json: bool,
    },
    Stop {
        force: bool,
    },
    Doctor {
        json: bool,
    },
    DoctorProcesses {
        json: bool,
        cleanup: bool,
    },
    Logs {
        id: String,
        n: u64,
        follow: bool,
    },
    Restart {
        id: String,
    },
    Console {
        open: bool,
    },
}

/// Parse the arguments after the program name; runs nothing.
pub fn parse<I>(args: I) -> Result<Invocation>
where
    I: IntoIterator,
    I::Item: Into<std::ffi::OsString>,
{
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let command = match parser.next()? {
        None => return Err(Error::Usage("no command given".into())),
        Some(Long("help") | Short('h')) => return parse_help(&mut parser),
        Some(Long("version") | Short('V')) => {
            no_more(&mut parser)?;
            return Ok(Invocation::Version);
        }
        Some(Value(v)) => v.string()?,
        Some(other) => return Err(other.unexpected().into()),
    };
    let help = |command| {
        Ok(Invocation::Help {
            command: Some(command),
        })
    };
    match command.as_str() {
        "run" => parse_run(&mut parser),
        "daemon" => {
            match parser.next()? {
                None => {}
                Some(Long("help") | Short('h')) => return help("daemon"),
                Some(arg) => return Err(arg.unexpected().into()),
            }
            Ok(Invocation::Daemon)
        }
        "status" => {
            let mut json = false;
            while let Some(arg) = parser.next()? {
                match arg {
                    Long("help") | Short('h') => return help("status"),
                    Long("json") => json = true,
                    other => return Err(other.unexpected().into()),
                }
            }
            Ok(Invocation::Status { json })
        }
        "stop" => {
            let mut force = false;
            while let Some(arg) = parser.next()? {
                match arg {
                    Long("help") | Short('h') => return help("stop"),
                    Long("force") => force = true,
                    other => return Err(other.unexpected().into()),
                }
            }
            Ok(Invocation::Stop { force })
        }
        "doctor" => {
            let (mut json, mut cleanup, mut processes) = (false, false, false);
            while let Some(arg) = parser.next()? {
                match arg {
                    Long("help") | Short('h') if processes => return help("doctor processes"),
                    Long("help") | Short('h') => return help("doctor"),
                    Long("json") => json = true,
                    Long("cleanup-stale-records") if processes => cleanup = true,
                    Value(v) if !processes && v == "processes" => processes = true,
                    other => return Err(other.unexpected().into()),
                }
            }
            Ok(if processes {
                Invocation::DoctorProcesses { json, cleanup }
            } else {
                Invocation::Doctor { json }
            })
        }
        "logs" => {
            let (mut id, mut n, mut follow) = (None, 100u64, false);
            while let Some(arg) = parser.next()? {
                match arg {
                    Long("help") | Short('h') => return help("logs"),
                    Short('n') => {
                        n = parser
                            .value()?
                            .parse()
                            .map_err(|_| Error::Usage("-n takes a number".into()))?
                    }
                    Short('f') => follow = true,
                    Value(v) if id.is_none() => id = Some(v.string()?),
                    other => return Err(other.unexpected().into()),
                }
            }
            Ok(Invocation::Logs {
                id: upstream_id(id)?,
                n,
                follow,
            })
        }
        "restart" => {
            let id = match parser.next()? {
                Some(Long("help") | Short('h')) => return help("restart"),
                Some(Value(v)) => Some(v.string()?),
                Some(other) => return Err(other.unexpected().into()),
                None => None,
            };
            no_more(&mut parser)?;
            Ok(Invocation::Restart {
                id: upstream_id(id)?,
            })
        }
        "console" => console::parse(&mut parser),
        "help" => parse_help(&mut parser),
        other => Err(Error::Usage(format!("unknown command '{other}'"))),
    }
}

/// `help [COMMAND]` and `--help [COMMAND]`: the command's name as in `COMMANDS`.
fn parse_help(parser: &mut lexopt::Parser) -> Result<Invocation> {
    use lexopt::prelude::*;
    let mut words = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Value(v) => words.push(v.string()?),
            other => return Err(other.unexpected().into()),
        }
    }
    if words.is_empty() {
        return Ok(Invocation::Help { command: None });
    }
    let name = words.join(" ");
    match COMMANDS.iter().find(|c| c.name == name) {
        Some(c) => Ok(Invocation::Help {
            command: Some(c.name),
        }),
        None => Err(Error::Usage(format!("unknown command '{name}'"))),
    }
}

fn run_cli() -> Result<i32> {
    match parse(std::env::args_os().skip(1))? {
        Invocation::Help { command: None } => {
            print!("{}", help());
            Ok(0)
        }
        Invocation::Help {
            command: Some(name),
        } => {
            print!("{}", command_help(name));
            Ok(0)
        }
        Invocation::Usage {
            command,
            problem,
            hint,
        } => {
            eprintln!("mcpshare: {problem}");
            eprintln!("hint: {hint}\n");
            eprint!("{}", command_help(command));
            Ok(2)
        }
        Invocation::Version => {
            println!("mcpshare {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Invocation::Run {
            isolated,
            global,
            argv,
        } => run_bridge(isolated, global, argv),
        Invocation::Daemon => {
            daemon::run(Home::open()?, |home| {
                serde_json::to_value(crate::doctor::checks(home)).unwrap_or_default()
            })?;
            Ok(0)
        }
        Invocation::Status { json } => status(&Home::existing()?, json),
        Invocation::Stop { force } => {
            let home = Home::existing()?;
            if force {
                crate::doctor::stop_force(&home)
            } else {
                stop(&home)
            }
        }
        Invocation::Doctor { json } => crate::doctor::summary(json),
        Invocation::DoctorProcesses { json, cleanup } => {
            crate::doctor::processes(&Home::existing()?, json, cleanup)
        }
        Invocation::Logs { id, n, follow } => logs(&Home::existing()?, &id, n, follow),
        Invocation::Restart { id } => restart(&Home::existing()?, &id),
        Invocation::Console { open } => console::run(&Home::open()?, open),
    }
}

/// An upstream id as `status` shows it; also a safe file name.
fn upstream_id(id: Option<String>) -> Result<String> {
    let id =
        id.ok_or_else(|| Error::Usage("an upstream ID is needed (see 'mcpshare status')".into()))?;
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::Usage(format!(
            "'{id}' is not an upstream id (see 'mcpshare status')"
        )));
    }
    Ok(id)
}

/// The live daemon, or None when none runs; a hung or foreign one is an error.
fn live_daemon(home: &Home) -> Result<Option<crate::state::manifest::Manifest>> {
    election::find_daemon(home, Instant::now() + election::STARTUP_TIMEOUT)
}

fn logs(home: &Home, id: &str, n: u64, follow: bool) -> Result<i32> {
    use std::io::Write;
    let daemon = live_daemon(home)?;
    let client = daemon.as_ref().map(Client::new);
    let first = match &client {
        Some(c) => c
            .call(
                "GET",
                &format!("/api/logs/{id}?n={n}"),
                None,
                Duration::from_secs(5),
            )
            .map_err(|e| Error::Daemon(format!("daemon: {e}")))?,
        None => (404, Value::Null),
    };
    let (code, body) = first;
    if code == 404 {
        // The daemon does not know it (stopped for idleness, or no daemon): read the file.
        let path = home.upstream_log(id);
        if !path.exists() {
            return Err(Error::Daemon(format!(
                "no upstream {id}: {} does not exist",
                path.display()
            )));
        }
        if follow {
            return Err(Error::Daemon(format!(
                "upstream {id} is not running; -f needs it running"
            )));
        }
        for line in crate::supervisor::logbook::file_tail(&path, n as usize) {
            println!("{line}");
        }
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    // Follow from the newest line, also when none was printed (`-n 0`).
    let mut last = print_lines(&mut out, &body)?.max(body["last"].as_u64().unwrap_or(0));
    let Some(client) = client.filter(|_| follow) else {
        return Ok(0);
    };
    loop {
        let path = format!("/api/logs/{id}?after={last}&wait_ms=10000");
        match client.call("GET", &path, None, Duration::from_secs(15)) {
            Ok((200, body)) => last = print_lines(&mut out, &body)?.max(last),
            // The daemon or the upstream went away: the log ends here.
            _ => return Ok(0),
        }
        let _ = out.flush();
    }
}

/// Print the lines of a logs answer; returns the number of the last one.
fn print_lines(out: &mut impl std::io::Write, body: &Value) -> Result<u64> {
    let mut last = 0;
    for l in body["lines"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "{}", l["text"].as_str().unwrap_or(""));
        last = l["n"].as_u64().unwrap_or(last);
    }
    Ok(last)
}

fn restart(home: &Home, id: &str) -> Result<i32> {
    let m = live_daemon(home)?
        .ok_or_else(|| Error::Daemon(format!("no daemon running for {}", home.dir().display())))?;
    let timeout = crate::state::settings::start_timeout() + STOP_TIMEOUT;
    let (code, body) = control(&m, "POST", &format!("/api/restart/{id}"), timeout)?;
    match code {
        200 => {
            println!("restarted {id} (pid {})", body["pid"]);
            Ok(0)
        }
        _ => Err(Error::Daemon(format!(
            "cannot restart {id}: {}",
            body["error"].as_str().unwrap_or("unknown error")
        ))),
    }
}

fn no_more(parser: &mut lexopt::Parser) -> Result<()> {
    match parser.next()? {
        None => Ok(()),
        Some(arg) => Err(arg.unexpected().into()),
    }
}

fn parse_run(parser: &mut lexopt::Parser) -> Result<Invocation> {
    use lexopt::prelude::*;
    let (mut isolated, mut global) = (false, false);
    let mut argv: Vec<String> = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("help") | Short('h') => {
                return Ok(Invocation::Help {
                    command: Some("run"),
                });
            }
            Long("isolated") => isolated = true,
            Long("global") => global = true,
            Value(v) => {
                argv.push(v.string()?);
                for rest in parser.raw_args()? {
                    argv.push(
                        rest.into_string()
                            .map_err(|_| Error::Usage("arguments must be UTF-8".into()))?,
                    );
                }
            }
            other => return Err(other.unexpected().into()),
        }
    }
    if argv.is_empty() {
        return Ok(Invocation::Usage {
            command: "run",
            problem: "run needs the MCP server's command after '--'".into(),
            hint: "for example: mcpshare run -- npx -y @modelcontextprotocol/server-memory",
        });
    }
    Ok(Invocation::Run {
        isolated,
        global,
        argv,
    })
}

fn run_bridge(isolated: bool, global: bool, mut argv: Vec<String>) -> Result<i32> {
    let cwd =
        std::env::current_dir().map_err(|e| Error::io("cannot read the working directory", e))?;
    let spec = Spec {
        command: argv.remove(0),
        args: argv,
        cwd: cwd.display().to_string(),
        env: std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
        global,
        isolated,
    };
    if global {
        for arg in relative_paths(&spec.command, &spec.args) {
            crate::log!(
                "warning: --global shares this server across working directories, but '{arg}' is \
                 a relative path: a client in another directory would use this one's {}; \
                 give it as an absolute path",
                cwd.join(arg.trim_start_matches("./")).display()
            );
        }
    }
    let home = Home::open()?;
    Ok(bridge::run(home, spec))
}

/// The relative paths among a server's command and arguments (also as the
/// value of `--opt=PATH`): `.`, `..`, or names starting `./` or `../`.
fn relative_paths<'a>(command: &'a str, args: &'a [String]) -> Vec<&'a str> {
    std::iter::once(command)
        .chain(args.iter().map(String::as_str))
        .map(|a| match a.split_once('=') {
            Some((flag, value)) if flag.starts_with('-') => value,
            _ => a,
        })
        .filter(|a| matches!(*a, "." | "..") || a.starts_with("./") || a.starts_with("../"))
        .collect()
}

/// How long `status` and `stop` wait for the daemon's control API.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// A bodyless call to the daemon's control API; a failure names its pid.
fn control(
    m: &crate::state::manifest::Manifest,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<(u16, Value)> {
    Client::new(m)
        .call(method, path, None, timeout)
        .map_err(|e| Error::Daemon(format!("daemon pid {}: {e}", m.pid)))
}

/// The daemon's status, or None when none runs.
fn fetch_status(home: &Home) -> Result<Option<Value>> {
    let Some(m) = live_daemon(home)? else {
        return Ok(None);
    };
    let (code, body) = control(&m, "GET", "/api/status", CONTROL_TIMEOUT)?;
    if code != 200 {
        return Err(Error::Daemon(format!(
            "daemon pid {} answered HTTP {code}: {body}",
            m.pid
        )));
    }
    Ok(Some(body))
}

fn status(home: &Home, as_json: bool) -> Result<i32> {
    let st = match fetch_status(home) {
        Ok(st) => st,
        // A script reads the error on stdout too, as one object.
        Err(e) if as_json => {
            let daemon = match &e {
                Error::DaemonHung { pid, .. } | Error::Incompatible { pid, .. } => {
                    json!({"pid": pid, "responding": false})
                }
                _ => Value::Null,
            };
            let v = json!({"daemon": daemon, "upstreams": [], "error": e.to_string(), "hint": e.hint()});
            println!("{v}");
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    if as_json {
        let v = st.unwrap_or_else(|| json!({"daemon": null, "upstreams": []}));
        println!("{v}");
        return Ok(0);
    }
    let Some(st) = st else {
        println!("no daemon running for {}", home.dir().display());
        return Ok(0);
    };
    let user_home = std::env::var("HOME").ok();
    print!(
        "{}",
        render_status(&st, log::unix_millis(), user_home.as_deref())
    );
    print!("{}", render_near_misses(&st));
    Ok(0)
}

/// Upstreams of one command that did not share, each with what differs
/// and the fix; nothing when there are none.
pub fn render_near_misses(st: &Value) -> String {
    let near = st["near_misses"].as_array().cloned().unwrap_or_default();
    if near.is_empty() {
        return String::new();
    }
    let mut s = String::from("\nnot shared, although the command and arguments are the same:\n");
    for n in near {
        let names = |k: &str| crate::mcp::jsonrpc::strings(&n[k]);
        s.push_str(&format!(
            "  {} differ in {}\n    fix: {}\n",
            names("upstreams").join(" and "),
            names("differ").join(", "),
            n["fix"].as_str().unwrap_or("?")
        ));
    }
    s
}

/// The human table of `mcpshare status`.
pub fn render_status(st: &Value, now_ms: u64, user_home: Option<&str>) -> String {
    let d = &st["daemon"];
    let up_ms = now_ms.saturating_sub(d["started_at"].as_u64().unwrap_or(now_ms));
    let mut s = format!(
        "daemon pid {}  port {}  version {}  up {}  sessions {}\nhome {}\n",
        d["pid"],
        d["port"],
        d["version"].as_str().unwrap_or("?"),
        human_duration(up_ms / 1000),
        d["sessions"],
        d["home"].as_str().unwrap_or("?"),
    );
    let ups = st["upstreams"].as_array().cloned().unwrap_or_default();
    if ups.is_empty() {
        s.push_str("no upstreams\n");
        return s;
    }
    let header = [
        "UPSTREAM", "STATE", "PID", "SESSIONS", "RESTARTS", "CWD", "CLIENTS", "COMMAND",
    ];
    let rows: Vec<[String; 8]> = ups
        .iter()
        .map(|u| {
            let cmd: Vec<&str> = u["command"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let state = match (u["state"].as_str(), u["restart_in_ms"].as_u64()) {
                (Some("restarting"), Some(ms)) => format!("restarting in {} s", ms.div_ceil(1000)),
                (state, _) => state.unwrap_or("?").to_string(),
            };
            let clients: Vec<&str> = u["clients"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            [
                u["id"].as_str().unwrap_or("?").to_string(),
                state,
                u["pid"]
                    .as_u64()
                    .map_or_else(|| "-".into(), |p| p.to_string()),
                u["sessions"].to_string(),
                u["restarts"].to_string(),
                short_dir(u["cwd"].as_str().unwrap_or("?"), user_home),
                count_names(&clients),
                cmd.join(" "),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Numbers to the right, text to the left; the command last, unpadded.
    let line = |cells: [&str; 8]| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = width[i].saturating_sub(cell.chars().count());
            match i {
                7 => l.push_str(cell),
                2..=4 => l.push_str(&format!("{}{cell}  ", " ".repeat(pad))),
                _ => l.push_str(&format!("{cell}{}  ", " ".repeat(pad))),
            }
        }
        l.push('\n');
        l
    };
    s.push('\n');
    s.push_str(&line(header));
    for (u, row) in ups.iter().zip(&rows) {
        s.push_str(&line(std::array::from_fn(|i| row[i].as_str())));
        if let Some(e) = u["last_error"].as_str() {
            s.push_str(&format!("  last error: {e}\n"));
        }
    }
    s
}

/// A working directory as `status` shows it: the user's home as `~`, and
/// a long one cut to its last components.
fn short_dir(dir: &str, user_home: Option<&str>) -> String {
    const MAX: usize = 32;
    let dir = match user_home
        .filter(|h| h.len() > 1)
        .and_then(|h| dir.strip_prefix(h.trim_end_matches('/')))
    {
        Some("") => "~".to_string(),
        Some(rest) if rest.starts_with('/') => format!("~{rest}"),
        _ => dir.to_string(),
    };
    let n = dir.chars().count();
    if n <= MAX {
        return dir;
    }
    let tail: String = dir.chars().skip(n - (MAX - 1)).collect();
    format!("…{tail}")
}

/// Client names, each once with its count: "claude-code (2), cursor".
fn count_names(names: &[&str]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < names.len() {
        let same = names[i..].iter().take_while(|n| **n == names[i]).count();
        out.push(match same {
            1 => names[i].to_string(),
            k => format!("{} ({k})", names[i]),
        });
        i += same;
    }
    if out.is_empty() {
        "-".into()
    } else {
        out.join(", ")
    }
}

fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{}h{}m", s / 3600, s % 3600 / 60),
    }
}

fn stop(home: &Home) -> Result<i32> {
    let deadline = Instant::now() + STOP_TIMEOUT;
    let m = match live_daemon(home) {
        Ok(Some(m)) => m,
        Ok(None) => {
            println!("no daemon running for {}", home.dir().display());
            return Ok(0);
        }
        // A daemon of another protocol still takes a stop request.
        Err(Error::Incompatible { pid, .. }) => {
            crate::state::manifest::Manifest::read(&home.manifest())
                .filter(|m| m.pid == pid)
                .ok_or_else(|| {
                    Error::Daemon(format!("daemon pid {pid}: its manifest changed; try again"))
                })?
        }
        Err(e) => return Err(e),
    };
    let (code, _) = control(&m, "POST", "/api/stop", CONTROL_TIMEOUT)?;
    if code != 202 {
        return Err(Error::Daemon(format!(
            "daemon pid {} refused to stop: HTTP {code}",
            m.pid
        )));
    }
    let lock_path = home.daemon_lock();
    if !lock::wait_free(&lock_path, deadline).map_err(|e| Error::Path(lock_path, e))? {
        return Err(Error::Daemon(format!(
            "daemon pid {} did not stop within {} s",
            m.pid,
            STOP_TIMEOUT.as_secs()
        )));
    }
    println!("stopped daemon pid {}", m.pid);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table_shows_each_upstream() {
        let st = json!({
            "daemon": {"pid": 10, "port": 4000, "version": "0.1.0", "started_at": 0, "sessions": 2, "home": "/h"},
            "upstreams": [{"id": "fixture-ab", "state": "running", "pid": 11, "sessions": 2, "restarts": 0,
                           "command": ["fixture", "--x"]}]
        });
        let out = render_status(&st, 61_000, Some("/home/me"));
        assert!(
            out.contains("daemon pid 10  port 4000  version 0.1.0  up 1m1s  sessions 2"),
            "{out}"
        );
        assert!(out.contains("fixture-ab"), "{out}");
        assert!(out.contains("fixture --x"), "{out}");
    }

    #[test]
    fn relative_paths_are_found_in_arguments_and_option_values() {
        let args: Vec<String> = ["-y", "--root=./data", "../x", "/abs", "a=./b", "."]
            .map(String::from)
            .to_vec();
        assert_eq!(
            relative_paths("./srv.py", &args),
            ["./srv.py", "./data", "../x", "."]
        );
        assert!(relative_paths("npx", &["pkg@1".to_string()]).is_empty());
    }

    #[test]
    fn working_directories_and_client_names_are_shortened() {
        assert_eq!(short_dir("/home/me/proj", Some("/home/me")), "~/proj");
        assert_eq!(short_dir("/home/me", Some("/home/me/")), "~");
        assert_eq!(short_dir("/home/meat", Some("/home/me")), "/home/meat");
        assert_eq!(short_dir("/x", Some("/")), "/x");
        let long = "/srv/a/very/long/path/to/some/project/deep/inside";
        let short = short_dir(long, None);
        assert_eq!(short.chars().count(), 32);
        assert!(
            short.starts_with('…') && long.ends_with(&short[3..]),
            "{short}"
        );
        assert_eq!(count_names(&["a", "a", "b"]), "a (2), b");
        assert_eq!(count_names(&[]), "-");
    }

    /// The commands of `--help` as printed: each synopsis line (without
    /// "mcpshare ") and the options listed under it.
    fn help_blocks(help: &str) -> Vec<(String, Vec<String>)> {
        let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
        for line in help.lines() {
            if let Some(synopsis) = line.strip_prefix("  mcpshare ") {
                blocks.push((synopsis.to_string(), Vec::new()));
            } else if let (Some(opt), Some(b)) = (line.strip_prefix("      -"), blocks.last_mut()) {
                b.1.push(format!("-{}", opt.split_whitespace().next().unwrap()));
            }
        }
        blocks
    }

    /// A command line for `synopsis` with `flag` (and a value, when the
    /// synopsis shows one) before its required arguments.
    fn line_with(synopsis: &str, flag: Option<&str>) -> Vec<String> {
        let (mut words, mut args, mut depth) = (Vec::new(), Vec::new(), 0);
        for token in synopsis.split_whitespace() {
            let inside = depth > 0 || token.starts_with('[');
            depth += token.matches('[').count();
            depth -= token.matches(']').count();
            match token {
                _ if inside => {}
                t if t.chars().all(|c| c.is_ascii_uppercase()) => args.push("x".to_string()),
                "--" => args.push("--".to_string()),
                t if args.is_empty() => words.push(t.to_string()),
                t => args.push(t.to_string()),
            }
        }
        if let Some(flag) = flag {
            words.push(flag.to_string());
            if synopsis.contains(&format!("[{flag} N]")) {
                words.push("5".into());
            }
        }
        words.extend(args);
        words
    }

    /// Every option `--help` lists under a command is accepted by the
    /// parser for that command and shown in its synopsis; every other known
    /// option is refused there. The parser is the independent side: a
    /// table entry it does not honour, or an option it takes that help does
    /// not list, fails here.
    #[test]
    fn help_lists_exactly_the_options_the_parser_accepts() {
        let blocks = help_blocks(&help());
        assert_eq!(blocks.len(), COMMANDS.len() + 1, "{blocks:?}");
        let mut known: Vec<String> = blocks.iter().flat_map(|b| b.1.clone()).collect();
        known.extend(
            COMMANDS
                .iter()
                .flat_map(|c| c.options.iter().map(|o| o.0.to_string())),
        );
        known.extend(["--force", "--json", "--verbose", "-q"].map(String::from));
        known.sort();
        known.dedup();
        for (synopsis, listed) in blocks.iter().filter(|b| !b.0.starts_with("help ")) {
            let plain = line_with(synopsis, None);
            assert!(parse(&plain).is_ok(), "{plain:?} does not parse");
            for flag in &known {
                let line = line_with(synopsis, Some(flag.as_str()));
                let parsed = parse(&line);
                if listed.contains(flag) {
                    assert!(parsed.is_ok(), "{line:?}: {:?}", parsed.err());
                    assert!(
                        synopsis.contains(&format!("[{flag}")),
                        "{synopsis} lacks {flag}"
                    );
                } else {
                    assert!(
                        parsed.is_err(),
                        "{line:?} parses but help does not list {flag}"
                    );
                }
            }
        }
        assert_eq!(
            parse(["--help"]).unwrap(),
            Invocation::Help { command: None }
        );
        assert_eq!(parse(["--version"]).unwrap(), Invocation::Version);
    }

    #[test]
    fn options_parse_to_what_they_say() {
        assert_eq!(
            parse(["logs", "-n", "7", "-f", "up-1"]).unwrap(),
            Invocation::Logs {
                id: "up-1".into(),
                n: 7,
                follow: true
            }
        );
        assert_eq!(
            parse(["run", "--global", "--", "srv", "--isolated"]).unwrap(),
            Invocation::Run {
                isolated: false,
                global: true,
                argv: vec!["srv".into(), "--isolated".into()]
            }
        );
        assert_eq!(
            parse(["doctor", "processes", "--cleanup-stale-records"]).unwrap(),
            Invocation::DoctorProcesses {
                json: false,
                cleanup: true
            }
        );
        assert!(parse(["doctor", "--cleanup-stale-records"]).is_err());
        assert!(parse(["logs", "-n", "many", "x"]).is_err());
    }
}
