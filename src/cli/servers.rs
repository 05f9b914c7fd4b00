//! The commands that change or show the config file's servers: `add`,
//! `remove`, `enable`, `disable`, `list`, `edit`. They work on the file
//! (through `crate::config`); only `list` asks a running daemon for each
//! server's state, and none starts one. They never print an env or header
//! value.

use super::Invocation;
use crate::config::{self, Launch, RemoteKind, Runtime, Share, source};
use crate::error::{ConfigError, Error, Result};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// One parsed servers command.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Add(Add),
    Remove { name: String },
    Enable { name: String },
    Disable { name: String },
    List { json: bool },
    Edit,
}

/// What `add` was given, before it is checked.
#[derive(Debug, PartialEq, Eq, Default)]
pub struct Add {
    pub name: String,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    /// Some(false) for --eager, Some(true) for --lazy.
    pub lazy: Option<bool>,
    pub share: Option<Share>,
    pub url: Option<String>,
    pub sse: bool,
    pub headers: Vec<(String, String)>,
    pub source: Option<PathBuf>,
    pub runtime: Option<Runtime>,
    pub argv: Vec<String>,
}

fn usage(command: &'static str, problem: String, hint: &'static str) -> Result<Invocation> {
    Ok(Invocation::Usage {
        command,
        problem,
        hint,
    })
}

/// Parse a servers command (`command` is its name, already read).
pub fn parse(command: &'static str, parser: &mut lexopt::Parser) -> Result<Invocation> {
    use lexopt::prelude::*;
    let help = Ok(Invocation::Help {
        command: Some(command),
    });
    let servers = |c| Ok(Invocation::Servers(c));
    match command {
        "add" => parse_add(parser),
        "list" => {
            let mut json = false;
            while let Some(arg) = parser.next()? {
                match arg {
                    Long("help") | Short('h') => return help,
                    Long("json") => json = true,
                    other => return Err(other.unexpected().into()),
                }
            }
            servers(Command::List { json })
        }
        "edit" => match parser.next()? {
            None => servers(Command::Edit),
            Some(Long("help") | Short('h')) => help,
            Some(other) => Err(other.unexpected().into()),
        },
        _ => {
            let name = match parser.next()? {
                Some(Long("help") | Short('h')) => return help,
                Some(Value(v)) => v.string()?,
                Some(other) => return Err(other.unexpected().into()),
                None => {
                    return usage(
                        command,
                        format!("{command} needs the server's NAME"),
                        "see the names with 'mcpshare list'",
                    );
                }
            };
            super::no_more(parser)?;
            servers(match command {
                "remove" => Command::Remove { name },
                "enable" => Command::Enable { name },
                _ => Command::Disable { name },
            })
        }
    }
}

fn parse_add(parser: &mut lexopt::Parser) -> Result<Invocation> {
    use lexopt::prelude::*;
    let mut a = Add::default();
    let mut name = None;
    let mut problems: Vec<String> = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("help") | Short('h') => {
                return Ok(Invocation::Help {
                    command: Some("add"),
                });
            }
            Short('e') | Long("env") => {
                let kv = parser.value()?.string()?;
                match kv.split_once('=') {
                    Some((k, v)) if !k.is_empty() => a.env.push((k.into(), v.into())),
                    _ => problems.push(format!("-e takes KEY=VALUE, not '{kv}'")),
                }
            }
            Long("cwd") => a.cwd = Some(parser.value()?.into()),
            Long("lazy") => a.lazy = Some(true),
            Long("eager") => a.lazy = Some(false),
            Long("share") => {
                let s = parser.value()?.string()?;
                match Share::parse(&s) {
                    Some(s) => a.share = Some(s),
                    None => problems.push(format!(
                        "--share takes shared, per-cwd or per-client, not '{s}'"
                    )),
                }
            }
            Long("url") => a.url = Some(parser.value()?.string()?),
            Long("sse") => a.sse = true,
            Long("header") => {
                let kv = parser.value()?.string()?;
                match kv.split_once(':') {
                    Some((k, v)) if !k.trim().is_empty() => {
                        a.headers.push((k.trim().into(), v.trim_start().into()))
                    }
                    _ => problems.push(format!("--header takes NAME:VALUE, not '{kv}'")),
                }
            }
            Long("source") => a.source = Some(parser.value()?.into()),
            Long("runtime") => {
                let r = parser.value()?.string()?;
                match Runtime::parse(&r) {
                    Some(r) => a.runtime = Some(r),
                    None => {
                        problems.push(format!("--runtime takes node, bun or python, not '{r}'"))
                    }
                }
            }
            Value(v) if name.is_none() => name = Some(v.string()?),
            Value(v) => {
                a.argv.push(v.string()?);
                for rest in parser.raw_args()? {
                    a.argv.push(
                        rest.into_string()
                            .map_err(|_| Error::Usage("arguments must be UTF-8".into()))?,
                    );
                }
            }
            other => return Err(other.unexpected().into()),
        }
    }
    let kinds = [!a.argv.is_empty(), a.url.is_some(), a.source.is_some()];
    match name {
        None => problems.push("add needs the server's NAME".into()),
        Some(n) => a.name = n,
    }
    match kinds.iter().filter(|k| **k).count() {
        0 => {
            problems.push("add needs '-- COMMAND [ARGS...]', '--url URL' or '--source DIR'".into())
        }
        1 => {}
        _ => problems.push("give only one of '-- COMMAND', '--url' and '--source'".into()),
    }
    let remote_only = a.sse || !a.headers.is_empty();
    let stdio_only = !a.env.is_empty() || a.cwd.is_some();
    if remote_only && a.url.is_none() {
        problems.push("--sse and --header go with --url".into());
    }
    if stdio_only && a.url.is_some() {
        problems.push("-e and --cwd go with a command or --source, not --url".into());
    }
    if a.runtime.is_some() && a.source.is_none() {
        problems.push("--runtime goes with --source".into());
    }
    if let Some(p) = problems.into_iter().next() {
        return usage(
            "add",
            p,
            "for example: mcpshare add memory -- npx -y @modelcontextprotocol/server-memory",
        );
    }
    Ok(Invocation::Servers(Command::Add(a)))
}

/// Run a parsed servers command; the exit status.
pub fn run(c: Command) -> Result<i32> {
    let path = config::path()?;
    match c {
        Command::Add(a) => add(&path, a),
        Command::Remove { name } => {
            change(&path, &name, |text| {
                config::edit::remove_server(text, &name)
            })?;
            println!("removed {name} from {}", path.display());
            Ok(0)
        }
        Command::Enable { name } => enable(&path, &name, true),
        Command::Disable { name } => enable(&path, &name, false),
        Command::List { json } => list(&path, json),
        Command::Edit => edit(&path),
    }
}

fn bad(path: &Path, server: &str, message: String, hint: &str) -> Error {
    Error::Config(ConfigError {
        path: path.to_path_buf(),
        server: Some(server.to_string()),
        line: 0,
        column: 0,
        message,
        hint: Some(hint.to_string()),
    })
}

fn missing(path: &Path, name: &str) -> Error {
    bad(
        path,
        name,
        "no such server".into(),
        "see the names with 'mcpshare list'",
    )
}

/// Apply an edit of server `name` that says None when it is not there.
fn change(
    path: &Path,
    name: &str,
    f: impl Fn(&str) -> std::result::Result<Option<String>, String>,
) -> Result<()> {
    config::update(path, None, |text| match f(text) {
        Ok(Some(out)) => Ok(out),
        Ok(None) => Err(missing(path, name)),
        Err(e) => Err(bad(path, name, e, "fix the file with 'mcpshare edit'")),
    })?;
    Ok(())
}

fn enable(path: &Path, name: &str, on: bool) -> Result<i32> {
    change(path, name, |text| config::edit::set_enabled(text, name, on))?;
    println!(
        "{} {name} in {}",
        if on { "enabled" } else { "disabled" },
        path.display()
    );
    Ok(0)
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    }
}

fn add(path: &Path, a: Add) -> Result<i32> {
    let name = a.name.clone();
    config::check_name(&name).map_err(|why| bad(path, &name, why, "choose another name"))?;
    let duplicate = |config: &config::Config| {
        config.get(&name).map(|_| {
            bad(
                path,
                &name,
                "a server of this name is already in the file".into(),
                "pick another name, or 'mcpshare remove' it first",
            )
        })
    };
    // Before a long install: the file must be valid and the name free.
    if let Some(e) = duplicate(&config::load(path)?) {
        return Err(e);
    }
    let mut ours: Vec<(String, Value)> = Vec::new();
    if let Some(s) = a.share {
        ours.push(("share".into(), json!(s.as_str())));
    }
    if let Some(l) = a.lazy {
        ours.push(("lazy".into(), json!(l)));
    }
    let env: BTreeMap<String, String> = a.env.into_iter().collect();
    let launch = if let Some(url) = a.url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad(
                path,
                &name,
                format!("'{url}' is not an http:// or https:// URL"),
                "give the server's full URL",
            ));
        }
        if let Err(e) = crate::remote::check_url(&url) {
            let (what, hint) = e
                .split_once("; hint: ")
                .unwrap_or((&e, "give the server's full URL"));
            return Err(bad(path, &name, what.to_string(), hint));
        }
        Launch::Remote {
            kind: if a.sse {
                RemoteKind::Sse
            } else {
                RemoteKind::Http
            },
            url,
            headers: a.headers.into_iter().collect(),
        }
    } else if let Some(dir) = a.source {
        let envs = path.parent().unwrap_or(Path::new(".")).join("envs");
        // `list` and `status` show the server as installing while this runs.
        let home = crate::state::home::Home::open()?;
        let marker = source::Installing::begin(home.dir(), &name)?;
        eprintln!("mcpshare: installing {name} from {} ...", dir.display());
        let p = source::prepare(&name, &dir, a.runtime, &envs)?;
        drop(marker);
        ours.push(("runtime".into(), json!(p.runtime.as_str())));
        ours.push(("source".into(), json!(p.dir.to_string_lossy())));
        match p.launch {
            Launch::Stdio {
                command, args, cwd, ..
            } => Launch::Stdio {
                command,
                args,
                env,
                cwd,
            },
            remote => remote,
        }
    } else {
        let cwd = a.cwd.map(|c| absolute(&c));
        if let Some(c) = &cwd
            && !c.is_dir()
        {
            return Err(bad(
                path,
                &name,
                format!("--cwd {} is not a directory", c.display()),
                "give an existing directory",
            ));
        }
        let mut argv = a.argv.into_iter();
        let command = argv.next().unwrap_or_default();
        let base = cwd.clone().unwrap_or_else(|| absolute(Path::new(".")));
        if config::resolve_command(&command, Some(&base), std::env::var_os("PATH").as_deref())
            .is_none()
        {
            return Err(bad(
                path,
                &name,
                format!("command not found: {command}"),
                "install it, or give its full path (a bare name is looked up in PATH)",
            ));
        }
        // A relative path would be resolved from the daemon's directory.
        let command = if command.contains('/') && Path::new(&command).is_relative() {
            base.join(&command).to_string_lossy().into_owned()
        } else {
            command
        };
        Launch::Stdio {
            command,
            args: argv.collect(),
            env,
            cwd,
        }
    };
    let entry = config::entry(&launch, ours);
    config::update(path, None, |text| {
        if let Some(e) = duplicate(&config::parse(path, text)?) {
            return Err(e);
        }
        config::edit::put_server(text, &name, &entry)
            .map_err(|e| bad(path, &name, e, "fix the file with 'mcpshare edit'"))
    })?;
    println!("added {name} to {}", path.display());
    Ok(0)
}

/// The JSON `list --json` prints for one server: env and header values
/// as [`config::shown_value`] shows them.
pub fn server_json(s: &config::Server) -> Value {
    let shown = |m: &BTreeMap<String, String>| -> Value {
        m.iter()
            .map(|(k, v)| (k.clone(), json!(config::shown_value(v))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let mut v = json!({
        "name": s.name,
        "enabled": s.enabled,
        "lazy": s.lazy,
        "share": s.share.as_str(),
    });
    match &s.launch {
        Launch::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            v["kind"] = json!("stdio");
            v["command"] = json!(command);
            v["args"] = json!(args);
            v["env"] = shown(env);
            v["cwd"] = json!(cwd.as_ref().map(|c| c.to_string_lossy()));
        }
        Launch::Remote { kind, url, headers } => {
            v["kind"] = json!(kind.as_str());
            v["url"] = json!(url);
            v["headers"] = shown(headers);
        }
    }
    v["runtime"] = json!(s.runtime.map(|r| r.as_str()));
    v["source"] = json!(s.source.as_ref().map(|p| p.to_string_lossy()));
    v
}

fn list(path: &Path, as_json: bool) -> Result<i32> {
    let c = config::load(path)?;
    let states = states(path);
    // Servers being installed: `add` writes their entry once that is done.
    let installing: Vec<&Value> = states
        .values()
        .filter(|v| c.get(v["name"].as_str().unwrap_or("")).is_none() && v["state"] == "installing")
        .collect();
    if as_json {
        let servers: Vec<Value> = c
            .servers
            .iter()
            .map(|s| {
                let mut v = server_json(s);
                let st = state_of(s, &states);
                for k in ["state", "restart_in_ms", "last_error", "installer_pid"] {
                    v[k] = st[k].clone();
                }
                v
            })
            .chain(installing.iter().map(|v| (*v).clone()))
            .collect();
        println!(
            "{}",
            json!({"config": path.to_string_lossy(), "servers": servers})
        );
        return Ok(0);
    }
    print!("{}", render_list(&c, &states));
    if c.servers.is_empty() && installing.is_empty() {
        println!("no servers in {}", path.display());
    }
    Ok(0)
}

/// Each server's state, by name: the running daemon's (`status`'s
/// `config.servers`) when it reads this file, and `installing` for an
/// install under way. No daemon is started; with none, a server is
/// `stopped` or `disabled` as the file says.
fn states(path: &Path) -> BTreeMap<String, Value> {
    let mut states = BTreeMap::new();
    let Ok(home) = crate::state::home::Home::existing() else {
        return states;
    };
    match super::target::daemon_status(&home) {
        Ok(Some((_, st))) => {
            let theirs = st["config"]["path"].as_str().map(PathBuf::from);
            let same = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
            if theirs.as_deref().map(same) == Some(same(path)) {
                for v in st["config"]["servers"].as_array().into_iter().flatten() {
                    if let Some(name) = v["name"].as_str() {
                        states.insert(name.to_string(), v.clone());
                    }
                }
            }
        }
        Ok(None) => {}
        Err(e) => eprintln!("mcpshare: {e}; the states shown are from the file alone"),
    }
    for (name, pid) in source::installing(home.dir()) {
        states.insert(
            name.clone(),
            json!({"name": name, "state": "installing", "installer_pid": pid}),
        );
    }
    states
}

/// One server's state: from `states`, else what the file says.
fn state_of(s: &config::Server, states: &BTreeMap<String, Value>) -> Value {
    states
        .get(&s.name)
        .cloned()
        .unwrap_or_else(|| json!({"state": if s.enabled { "stopped" } else { "disabled" }}))
}

/// The STATE cell (`restarting` with when) and the line under the row
/// that says why, for `failed` and `crashed`.
fn state_cells(v: &Value) -> (String, Option<String>) {
    let state = v["state"].as_str().unwrap_or("?");
    match (state, v["restart_in_ms"].as_u64(), v["last_error"].as_str()) {
        ("restarting", Some(ms), _) => (format!("restarting in {} s", ms.div_ceil(1000)), None),
        ("failed" | "crashed", _, Some(e)) => (state.into(), Some(format!("{state}: {e}"))),
        _ => (state.into(), None),
    }
}

/// The table of `list`, with each server's state from `states`.
pub fn render_list(c: &config::Config, states: &BTreeMap<String, Value>) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut rows: Vec<([String; 7], Option<String>)> = vec![(
        [
            "NAME".into(),
            "STATE".into(),
            "KIND".into(),
            "ENABLED".into(),
            "LAZY".into(),
            "SHARE".into(),
            "COMMAND OR URL".into(),
        ],
        None,
    )];
    for s in &c.servers {
        let (kind, what) = match &s.launch {
            Launch::Stdio {
                command, args, env, ..
            } => {
                let mut w = std::iter::once(command)
                    .chain(args)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ");
                for (k, v) in env {
                    w.push_str(&format!("  {k}={}", config::shown_value(v)));
                }
                ("stdio", w)
            }
            Launch::Remote { kind, url, headers } => {
                let mut w = url.clone();
                for (k, v) in headers {
                    w.push_str(&format!("  {k}: {}", config::shown_value(v)));
                }
                (kind.as_str(), w)
            }
        };
        let (state, why) = state_cells(&state_of(s, states));
        rows.push((
            [
                s.name.clone(),
                state,
                kind.into(),
                yes(s.enabled).into(),
                yes(s.lazy).into(),
                s.share.as_str().into(),
                what,
            ],
            why,
        ));
    }
    for (name, v) in states {
        if c.get(name).is_none() && v["state"] == "installing" {
            let dash = || "-".to_string();
            let what = format!("(mcpshare add, pid {})", v["installer_pid"]);
            let cells = [
                name.clone(),
                "installing".into(),
                dash(),
                dash(),
                dash(),
                dash(),
                what,
            ];
            rows.push((cells, None));
        }
    }
    if rows.len() == 1 {
        return String::new();
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            rows.iter()
                .map(|(r, _)| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (r, why) in rows {
        for (i, w) in widths.iter().enumerate() {
            out.push_str(&format!("{:<w$}  ", r[i]));
        }
        out.push_str(&r[6]);
        out.push('\n');
        if let Some(why) = why {
            out.push_str(&format!("  {why}\n"));
        }
    }
    out
}

/// `edit`: the user edits a private copy; it replaces the file only when
/// valid and only when the file did not change meanwhile (else the copy is
/// kept and named). Waits for the editor without a deadline: a person is
/// typing.
fn edit(path: &Path) -> Result<i32> {
    let before = config::read(path)?.unwrap_or_default();
    let dir = config::private_dir_of(path)?;
    let copy = dir.join(format!(".config-edit-{}.json", std::process::id()));
    let start = if before.trim().is_empty() {
        "{\n  \"mcpServers\": {}\n}\n".to_string()
    } else {
        before.clone()
    };
    crate::state::home::write_atomic(&copy, start.as_bytes())
        .map_err(|e| Error::Path(copy.clone(), e))?;
    let result = edit_loop(path, &copy, &before, &start);
    // An edit that was not saved is never thrown away.
    let edited = std::fs::read_to_string(&copy).is_ok_and(|now| now != start);
    if result.is_err() && edited {
        eprintln!("mcpshare: your edit is kept in {}", copy.display());
    } else {
        let _ = std::fs::remove_file(&copy);
    }
    result
}

fn edit_loop(path: &Path, copy: &Path, before: &str, start: &str) -> Result<i32> {
    loop {
        run_editor(copy)?;
        let new = std::fs::read_to_string(copy).map_err(|e| Error::Path(copy.to_path_buf(), e))?;
        if new == start {
            println!("no change to {}", path.display());
            return Ok(0);
        }
        match config::parse(path, &new) {
            Ok(_) => {
                config::update(path, Some(before), |_| Ok(new.clone()))?;
                println!("saved {}", path.display());
                return Ok(0);
            }
            Err(e) if std::io::stdin().is_terminal() => {
                eprintln!("mcpshare: {e}");
                eprint!("edit again? [Y/n] ");
                let mut answer = String::new();
                std::io::stdin()
                    .read_line(&mut answer)
                    .map_err(|e| Error::io("reading the answer", e))?;
                if answer.trim().eq_ignore_ascii_case("n") {
                    return Err(Error::Config(ConfigError {
                        message: format!("{}; the file was not changed", e.message),
                        ..e
                    }));
                }
            }
            Err(e) => {
                return Err(Error::Config(ConfigError {
                    message: format!("{}; the file was not changed", e.message),
                    ..e
                }));
            }
        }
    }
}

fn run_editor(file: &Path) -> Result<()> {
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .or_else(|| {
            std::env::var("EDITOR")
                .ok()
                .filter(|e| !e.trim().is_empty())
        })
        .unwrap_or_else(|| "vi".to_string());
    // EDITOR may carry arguments ("code -w"): let the shell split it.
    let mut cmd = if cfg!(windows) {
        let mut c = std::process::Command::new(&editor);
        c.arg(file);
        c
    } else {
        let mut c = std::process::Command::new("sh");
        c.arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("sh")
            .arg(file);
        c
    };
    let status = cmd
        .status()
        .map_err(|e| Error::io(format!("cannot run the editor '{editor}'"), e))?;
    if !status.success() {
        return Err(Error::Usage(format!(
            "the editor '{editor}' failed ({status}); the config was not changed"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse;

    fn add(args: &[&str]) -> Add {
        match parse(args.iter().copied()).unwrap() {
            Invocation::Servers(Command::Add(a)) => a,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn problem(args: &[&str]) -> String {
        match parse(args.iter().copied()).unwrap() {
            Invocation::Usage { problem, .. } => problem,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn add_forms_parse() {
        let a = add(&[
            "add", "fs", "-e", "K=v=w", "--cwd", "/d", "--eager", "--share", "per-cwd", "--",
            "npx", "-y", "--x",
        ]);
        assert_eq!(a.name, "fs");
        assert_eq!(a.env, [("K".to_string(), "v=w".to_string())]);
        assert_eq!((a.lazy, a.share), (Some(false), Some(Share::PerCwd)));
        assert_eq!(a.argv, ["npx", "-y", "--x"]);
        let a = add(&[
            "add",
            "r",
            "--url",
            "https://h/mcp",
            "--sse",
            "--header",
            "Authorization: Bearer ${T}",
        ]);
        assert!(a.sse);
        assert_eq!(
            a.headers,
            [("Authorization".to_string(), "Bearer ${T}".to_string())]
        );
        let a = add(&["add", "s", "--source", "/p", "--runtime", "python"]);
        assert_eq!(
            (a.source, a.runtime),
            (Some(PathBuf::from("/p")), Some(Runtime::Python))
        );
    }

    #[test]
    fn add_problems_are_usage() {
        assert!(problem(&["add", "x"]).contains("needs '-- COMMAND"));
        assert!(problem(&["add", "x", "--url", "http://h", "--", "c"]).contains("only one"));
        assert!(problem(&["add", "x", "-e", "novalue", "--", "c"]).contains("KEY=VALUE"));
        assert!(problem(&["add", "x", "--share", "all", "--", "c"]).contains("per-cwd"));
        assert!(problem(&["add", "x", "--sse", "--", "c"]).contains("--url"));
        assert!(problem(&["add", "x", "--url", "http://h", "--cwd", "/"]).contains("--cwd"));
        assert!(problem(&["remove"]).contains("NAME"));
        assert!(parse(["add", "x", "--json", "--", "c"]).is_err());
        assert!(parse(["remove", "a", "b"]).is_err());
    }

    #[test]
    fn list_hides_values() {
        let c = config::parse(
            Path::new("/c.json"),
            r#"{"mcpServers": {"a": {"command": "x", "args": ["1"], "env": {"T": "sk-secret", "R": "${TOK}"}},
                "b": {"type": "http", "url": "https://h", "headers": {"Authorization": "Bearer sk-secret"}}}}"#,
        )
        .unwrap();
        let table = render_list(&c, &BTreeMap::new());
        assert!(!table.contains("sk-secret"), "{table}");
        assert!(
            table.contains("T=<hidden>") && table.contains("R=${TOK}"),
            "{table}"
        );
        assert!(table.contains("Authorization: <hidden>"), "{table}");
        let j = server_json(&c.servers[1]).to_string();
        assert!(!j.contains("sk-secret"), "{j}");
    }

    #[test]
    fn list_shows_each_state_with_its_why_or_when() {
        let c = config::parse(
            Path::new("/c.json"),
            r#"{"mcpServers": {"a": {"command": "x"}, "b": {"command": "y"},
                "c": {"command": "z", "mcpshare": {"enabled": false}}, "d": {"command": "w"}}}"#,
        )
        .unwrap();
        let states: BTreeMap<String, Value> = [
            (
                "a",
                json!({"state": "failed", "last_error": "environment variable TOKEN is not set"}),
            ),
            ("b", json!({"state": "restarting", "restart_in_ms": 1500})),
            (
                "new",
                json!({"name": "new", "state": "installing", "installer_pid": 77}),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let table = render_list(&c, &states);
        let row = |name: &str| {
            table
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no row {name}: {table}"))
                .split_whitespace()
                .nth(1)
                .unwrap()
                .to_string()
        };
        assert_eq!(row("a"), "failed");
        assert!(
            table.contains("  failed: environment variable TOKEN is not set"),
            "{table}"
        );
        assert!(table.contains("restarting in 2 s"), "{table}");
        assert_eq!(row("c"), "disabled");
        assert_eq!(row("d"), "stopped");
        assert_eq!(row("new"), "installing");
        assert!(table.contains("pid 77"), "{table}");
    }
}
