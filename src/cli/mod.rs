//! The command line: one table of commands and options feeds parsing,
//! `--help` and the man-page consistency test. `main` maps errors to the
//! exit statuses documented in mcpshare(1), and `run_cli` hands each
//! command to its own file, with the daemon look-up and control call they
//! share. Nothing here signals a process or changes a file.

mod console;
mod daemon;
mod doctor;
mod help;
mod logs;
pub mod orphans;
mod reload;
mod remote;
mod restart;
mod run;
mod servers;
mod status;
mod stop;
mod target;
mod tools;

mod clients;

pub use help::{COMMANDS, CommandDoc, ENVIRONMENT, command_help, help};

use crate::election;
use crate::error::{Error, Result};
use crate::net::client::Client;
use crate::state::home::Home;
use serde_json::Value;
use std::time::{Duration, Instant};

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
    RunServer {
        isolated: bool,
        name: String,
    },
    Reload,
    Mcp {
        profile: Option<String>,
        servers: Option<Vec<String>>,
        exclude: Vec<String>,
        budget: Option<u64>,
        page_size: Option<u64>,
    },
    Tools {
        name: String,
        json: bool,
    },
    Call {
        name: String,
        tool: String,
        args: Vec<String>,
        json: bool,
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
    /// add, remove, enable, disable, list, edit: the config file's servers.
    Servers(servers::Command),
    Orphans {
        json: bool,
        /// `--stop` and the pids after it.
        stop: Option<Vec<orphans::Target>>,
    },
    Clients(clients::Command),
    /// Internal (not in `COMMANDS`): the relay the daemon runs for a
    /// remote server.
    Remote {
        url: String,
        sse: bool,
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
        "mcp" => {
            let (mut profile, mut servers, mut exclude, mut budget, mut page_size) =
                (None, None, Vec::new(), None, None);
            let list = |v: String| -> Vec<String> {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            };
            while let Some(arg) = parser.next()? {
                match arg {
                    Long("help") | Short('h') => return help("mcp"),
                    Long("profile") => profile = Some(parser.value()?.string()?),
                    Long("servers") => servers = Some(list(parser.value()?.string()?)),
                    Long("exclude") => exclude.extend(list(parser.value()?.string()?)),
                    Long("name-budget") => {
                        budget = Some(
                            parser
                                .value()?
                                .parse()
                                .map_err(|_| Error::Usage("--name-budget takes a number".into()))?,
                        )
                    }
                    Long("page-size") => {
                        page_size = Some(
                            parser
                                .value()?
                                .parse()
                                .map_err(|_| Error::Usage("--page-size takes a number".into()))?,
                        )
                    }
                    other => return Err(other.unexpected().into()),
                }
            }
            Ok(Invocation::Mcp {
                profile,
                servers,
                exclude,
                budget,
                page_size,
            })
        }
        "reload" => {
            match parser.next()? {
                None => {}
                Some(Long("help") | Short('h')) => return help("reload"),
                Some(arg) => return Err(arg.unexpected().into()),
            }
            Ok(Invocation::Reload)
        }
        "tools" | "call" => {
            let mut json = false;
            let mut words: Vec<String> = Vec::new();
            while let Some(arg) = parser.next()? {
                match arg {
                    Long("help") | Short('h') if command == "tools" => return help("tools"),
                    Long("help") | Short('h') => return help("call"),
                    Long("json") => json = true,
                    Value(v) => words.push(v.string()?),
                    other => return Err(other.unexpected().into()),
                }
            }
            let needed = if command == "tools" { 1 } else { 2 };
            if words.len() < needed || (command == "tools" && words.len() > 1) {
                return Ok(Invocation::Usage {
                    command: if command == "tools" { "tools" } else { "call" },
                    problem: format!(
                        "{command} needs {}",
                        if command == "tools" {
                            "one configured server's NAME"
                        } else {
                            "a configured server's NAME and a TOOL"
                        }
                    ),
                    hint: "see 'mcpshare list' for the configured servers",
                });
            }
            let name = words.remove(0);
            Ok(if command == "tools" {
                Invocation::Tools { name, json }
            } else {
                let tool = words.remove(0);
                Invocation::Call {
                    name,
                    tool,
                    args: words,
                    json,
                }
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
        "add" => servers::parse("add", &mut parser),
        "remove" => servers::parse("remove", &mut parser),
        "enable" => servers::parse("enable", &mut parser),
        "disable" => servers::parse("disable", &mut parser),
        "list" => servers::parse("list", &mut parser),
        "edit" => servers::parse("edit", &mut parser),
        "orphans" => {
            let (mut json, mut stop) = (false, None);
            while let Some(arg) = parser.next()? {
                match arg {
                    Long("help") | Short('h') => return help("orphans"),
                    Long("json") => json = true,
                    Long("stop") => stop = Some(Vec::new()),
                    Value(v) if stop.is_some() => {
                        let t = orphans::parse_target(&v.string()?)?;
                        stop.get_or_insert_with(Vec::new).push(t);
                    }
                    other => return Err(other.unexpected().into()),
                }
            }
            if stop.as_ref().is_some_and(Vec::is_empty) {
                return Ok(Invocation::Usage {
                    command: "orphans",
                    problem: "--stop needs the pid of each tree to end".into(),
                    hint: "list them with 'mcpshare orphans'; nothing is ever stopped by name",
                });
            }
            Ok(Invocation::Orphans { json, stop })
        }
        "clients" | "import" | "connect" | "disconnect" => parse_clients(&command, &mut parser),
        "help" => parse_help(&mut parser),
        "remote" => remote::parse(&mut parser),
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
    // `run -- COMMAND` runs a command; `run NAME` a configured server.
    let mut dashed = false;
    loop {
        if let Some(raw) = parser.try_raw_args()
            && raw.peek() == Some(std::ffi::OsStr::new("--"))
        {
            dashed = true;
        }
        let Some(arg) = parser.next()? else { break };
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
            problem: "run needs a configured server's NAME, or the MCP server's command after '--'"
                .into(),
            hint: "for example: mcpshare run memory, or mcpshare run -- npx -y @modelcontextprotocol/server-memory",
        });
    }
    // `run NAME` alone names a configured server (or, when the config has
    // none of that name, a command without arguments). Clients that drop
    // the `--` (Gemini CLI does) still run `run [--global] CMD ARGS...`.
    if !dashed && argv.len() == 1 && !global {
        return Ok(Invocation::RunServer {
            isolated,
            name: argv.remove(0),
        });
    }
    Ok(Invocation::Run {
        isolated,
        global,
        argv,
    })
}

/// An upstream id as `status` shows it, or a configured server's name
/// (whose characters are a subset); also a safe file name.
fn upstream_id(id: Option<String>) -> Result<String> {
    let id = id.ok_or_else(|| {
        Error::Usage("an upstream ID or server NAME is needed (see 'mcpshare status')".into())
    })?;
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::Usage(format!(
            "'{id}' is not an upstream id or server name (see 'mcpshare status')"
        )));
    }
    Ok(id)
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
        } => run::run(isolated, global, argv),
        Invocation::RunServer { isolated, name } => run::run_server(isolated, &name),
        Invocation::Reload => reload::reload(),
        Invocation::Mcp {
            profile,
            servers,
            exclude,
            budget,
            page_size,
        } => {
            let selection = serde_json::json!({
                "profile": profile,
                "servers": servers,
                "exclude": exclude,
                "budget": budget,
                "page_size": page_size,
            });
            Ok(crate::bridge::run_hub(Home::open()?, selection))
        }
        Invocation::Tools { name, json } => tools::tools(&name, json),
        Invocation::Call {
            name,
            tool,
            args,
            json,
        } => tools::call(&name, &tool, &args, json),
        Invocation::Daemon => daemon::run(),
        Invocation::Status { json } => status::status(&Home::existing()?, json),
        Invocation::Stop { force } => {
            let home = Home::existing()?;
            if force {
                stop::stop_force(&home)
            } else {
                stop::stop(&home)
            }
        }
        Invocation::Doctor { json } => doctor::summary(json),
        Invocation::DoctorProcesses { json, cleanup } => {
            doctor::processes(&Home::existing()?, json, cleanup)
        }
        Invocation::Logs { id, n, follow } => logs::logs(&Home::existing()?, &id, n, follow),
        Invocation::Restart { id } => restart::restart(&Home::existing()?, &id),
        Invocation::Console { open } => console::run(&Home::open()?, open),
        Invocation::Servers(c) => servers::run(c),
        Invocation::Orphans { json, stop: None } => orphans::list(json),
        Invocation::Orphans {
            json,
            stop: Some(targets),
        } => orphans::stop(&targets, json),
        Invocation::Clients(c) => clients::run(c),
        Invocation::Remote { url, sse } => remote::run(url, sse),
    }
}

/// `clients`, `import`, `connect`, `disconnect`.
fn parse_clients(command: &str, parser: &mut lexopt::Parser) -> Result<Invocation> {
    use lexopt::prelude::*;
    let name = COMMANDS
        .iter()
        .find(|c| c.name == command)
        .expect("in the table")
        .name;
    let (mut json, mut dry_run, mut all, mut from, mut mode) = (false, false, false, None, None);
    let mut names = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("help") | Short('h') => {
                return Ok(Invocation::Help {
                    command: Some(name),
                });
            }
            Long("json") if name == "clients" => json = true,
            Long("dry-run") if matches!(name, "import" | "connect") => dry_run = true,
            Long("all") if matches!(name, "connect" | "disconnect") => all = true,
            Long("from") if name == "import" => from = Some(parser.value()?.string()?),
            Long("mode") if name == "connect" => {
                mode = Some(match parser.value()?.string()?.as_str() {
                    "hub" => clients::Mode::Hub,
                    "wrap" => clients::Mode::Wrap,
                    m => return Err(Error::Usage(format!("--mode is hub or wrap, not '{m}'"))),
                })
            }
            Value(v) if matches!(name, "connect" | "disconnect") => names.push(v.string()?),
            other => return Err(other.unexpected().into()),
        }
    }
    Ok(Invocation::Clients(match name {
        "clients" => clients::Command::List { json },
        "import" => clients::Command::Import { from, dry_run },
        "connect" => clients::Command::Connect {
            clients: names,
            all,
            mode: mode.unwrap_or(clients::Mode::Hub),
            dry_run,
        },
        _ => clients::Command::Disconnect {
            clients: names,
            all,
        },
    }))
}

/// The live daemon, or None when none runs; a hung or foreign one is an error.
fn live_daemon(home: &Home) -> Result<Option<crate::state::manifest::Manifest>> {
    election::find_daemon(home, Instant::now() + election::STARTUP_TIMEOUT)
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

#[cfg(test)]
mod tests {
    use super::*;

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
                // A placeholder, or a choice of them (`ID|NAME`).
                t if t.chars().all(|c| c.is_ascii_uppercase() || c == '|') => {
                    args.push("x".to_string())
                }
                "--" => args.push("--".to_string()),
                t if args.is_empty() => words.push(t.to_string()),
                t => args.push(t.to_string()),
            }
        }
        if let Some(flag) = flag {
            words.push(flag.to_string());
            // A flag's value: a number for N, else its first choice.
            if let Some(value) = synopsis
                .split(&format!("[{flag} "))
                .nth(1)
                .and_then(|rest| rest.split(']').next())
            {
                let first = value.split('|').next().unwrap_or(value);
                let first = first.split('[').next().unwrap_or(first);
                words.push(if matches!(first, "N" | "PID") {
                    "5".into()
                } else {
                    first.to_lowercase()
                });
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
        // Gemini CLI drops the `--`: a command with arguments still runs.
        assert_eq!(
            parse(["run", "--global", "node", "server.js"]).unwrap(),
            Invocation::Run {
                isolated: false,
                global: true,
                argv: vec!["node".into(), "server.js".into()]
            }
        );
        assert_eq!(
            parse(["run", "memory"]).unwrap(),
            Invocation::RunServer {
                isolated: false,
                name: "memory".into()
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
