//! `clients`, `import`, `connect` and `disconnect`: the MCP clients on this
//! machine and their servers. Planning is in `crate::clients`; here are
//! the reports, the order of writes (backup, record, file) and the
//! retries.

use crate::clients::import::{self, Outcome};
use crate::clients::paths::Env;
pub use crate::clients::plan::Mode;
use crate::clients::plan::{self, Change, Entry, Target};
use crate::clients::record::{self, Record};
use crate::clients::{self, Client, ClientServer, Location, Scope, Shape, Transport};
use crate::config::{self, Launch, RemoteKind, edit};
use crate::error::{Error, Result};
use crate::state::home::Home;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    List {
        json: bool,
    },
    Import {
        from: Option<String>,
        dry_run: bool,
    },
    Connect {
        clients: Vec<String>,
        all: bool,
        mode: Mode,
        dry_run: bool,
    },
    Disconnect {
        clients: Vec<String>,
        all: bool,
    },
}

/// How long `claude mcp ...` may take.
const CLAUDE_CLI_TIMEOUT: Duration = Duration::from_secs(30);

fn chosen(names: &[String], all: bool, found: impl Fn(Client) -> bool) -> Result<Vec<Client>> {
    if all {
        return Ok(Client::ALL.into_iter().filter(|c| found(*c)).collect());
    }
    if names.is_empty() {
        return Err(Error::Usage(
            "name a client (see 'mcpshare clients') or give --all".into(),
        ));
    }
    names
        .iter()
        .map(|n| {
            Client::parse(n).ok_or_else(|| {
                let known: Vec<&str> = Client::ALL.iter().map(|c| c.id()).collect();
                Error::Usage(format!(
                    "unknown client '{n}'; the clients are {}",
                    known.join(", ")
                ))
            })
        })
        .collect()
}

pub fn run(cmd: Command) -> Result<i32> {
    let env = Env::current()?;
    match cmd {
        Command::List { json } => list(&env, json),
        Command::Import { from, dry_run } => import(&env, from.as_deref(), dry_run),
        Command::Connect {
            clients,
            all,
            mode,
            dry_run,
        } => {
            let chosen = chosen(&clients, all, |c| {
                clients::paths::files(c, &env)[0].path.is_file()
            })?;
            let home = Home::open()?;
            for c in chosen {
                connect(&home, &env, c, mode, dry_run)?;
            }
            Ok(0)
        }
        Command::Disconnect { clients, all } => {
            let home = Home::existing()?;
            let chosen = chosen(&clients, all, |_| true)?;
            for c in chosen {
                disconnect(&home, &env, c, !all)?;
            }
            Ok(0)
        }
    }
}

fn client_error(path: &Path, message: String) -> Error {
    let hint = if message.contains("invalid JSON") || message.starts_with("line ") {
        Some("fix the file (or move it away) and run the command again".to_string())
    } else {
        None
    };
    Error::Client {
        path: path.to_path_buf(),
        message,
        hint,
    }
}

fn servers_at(loc: &Location) -> Result<Vec<ClientServer>> {
    let text = clients::read_text(&loc.path)?.unwrap_or_default();
    clients::read_servers(loc, &text).map_err(|m| client_error(&loc.path, m))
}

/// Is the client's user file connected: a record of ours, or an entry
/// that runs mcpshare?
fn connected(home: Option<&Home>, env: &Env, c: Client) -> &'static str {
    let user = &clients::paths::files(c, env)[0].path;
    if home.is_some_and(|h| record::record_path(h, c.id(), user).is_file()) {
        return "yes";
    }
    let through = clients::locations(c, env).iter().filter(|l| l.path == *user).any(|l| {
        servers_at(l).unwrap_or_default().iter().any(|s| matches!(&s.transport, Transport::Stdio { command, .. } if plan::is_mcpshare(command)))
    });
    if through { "yes" } else { "no" }
}

fn list(env: &Env, json_out: bool) -> Result<i32> {
    let home = Home::existing().ok();
    let mut rows = Vec::new();
    for c in Client::ALL {
        let mut files = Vec::new();
        let mut count = 0;
        for l in clients::locations(c, env) {
            let (n, problem) = match servers_at(&l) {
                Ok(s) => (s.len(), None),
                Err(e) => (0, Some(e.to_string())),
            };
            count += n;
            files.push(
                json!({"scope": l.scope.label(), "path": l.path, "servers": n, "problem": problem}),
            );
        }
        let installed = clients::installed(c, env) || !files.is_empty();
        rows.push(json!({
            "client": c.id(),
            "installed": installed,
            "path": clients::paths::files(c, env)[0].path,
            "servers": count,
            "connected": connected(home.as_ref(), env, c) == "yes",
            "files": files,
        }));
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
        return Ok(0);
    }
    println!(
        "{:<15} {:<9} {:>7} {:<9} PATH",
        "CLIENT", "INSTALLED", "SERVERS", "CONNECTED"
    );
    for r in &rows {
        let yes = |b: bool| if b { "yes" } else { "no" };
        println!(
            "{:<15} {:<9} {:>7} {:<9} {}",
            r["client"].as_str().unwrap_or(""),
            yes(r["installed"] == true),
            r["servers"].as_u64().unwrap_or(0),
            yes(r["connected"] == true),
            r["path"].as_str().unwrap_or("")
        );
        for f in r["files"].as_array().into_iter().flatten().skip(1) {
            println!(
                "{:<15} {:<9} {:>7} {:<9} {} ({})",
                "",
                "",
                f["servers"].as_u64().unwrap_or(0),
                "",
                f["path"].as_str().unwrap_or(""),
                f["scope"].as_str().unwrap_or("")
            );
        }
        for f in r["files"].as_array().into_iter().flatten() {
            if let Some(p) = f["problem"].as_str() {
                println!("  warning: {p}");
            }
        }
    }
    Ok(0)
}

/// A file given to `import --from`: its layout from its name and keys.
fn file_location(path: &Path) -> Result<Location> {
    let text = clients::read_text(path)?
        .ok_or_else(|| Error::Path(path.to_path_buf(), std::io::ErrorKind::NotFound.into()))?;
    let (client, shape) = if path.extension().is_some_and(|e| e == "toml") {
        (Client::Codex, Shape::CodexToml)
    } else {
        let (_, v) = clients::json_clients::parse(&text).map_err(|m| client_error(path, m))?;
        if v.get("context_servers").is_some() {
            (Client::Zed, Shape::ZedContextServers)
        } else if v.get("servers").is_some() && v.get("mcpServers").is_none() {
            (Client::Vscode, Shape::VscodeServers)
        } else {
            (Client::ClaudeDesktop, Shape::McpServers)
        }
    };
    Ok(Location {
        client,
        scope: Scope::User,
        path: path.to_path_buf(),
        shape,
        keys: vec![shape.key().into()],
    })
}

fn transport_of(l: &Launch) -> Transport {
    match l.clone() {
        Launch::Stdio {
            command,
            args,
            env,
            cwd,
        } => Transport::Stdio {
            command,
            args,
            env,
            cwd: cwd.map(|c| c.to_string_lossy().into_owned()),
        },
        Launch::Remote { kind, url, headers } => Transport::Remote {
            sse: kind == RemoteKind::Sse,
            url,
            headers,
        },
    }
}

fn launch_of(t: &Transport) -> Launch {
    match t.clone() {
        Transport::Stdio {
            command,
            args,
            env,
            cwd,
        } => Launch::Stdio {
            command,
            args,
            env,
            cwd: cwd.map(PathBuf::from),
        },
        Transport::Remote { sse, url, headers } => Launch::Remote {
            kind: if sse {
                RemoteKind::Sse
            } else {
                RemoteKind::Http
            },
            url,
            headers,
        },
    }
}

/// mcpshare's servers as (name, identity).
fn existing() -> Result<(PathBuf, Vec<(String, Transport)>)> {
    let path = config::path()?;
    let cfg = config::load(&path).map_err(Error::Config)?;
    Ok((
        path,
        cfg.servers
            .iter()
            .map(|s| (s.name.clone(), transport_of(&s.launch)))
            .collect(),
    ))
}

fn import(env: &Env, from: Option<&str>, dry_run: bool) -> Result<i32> {
    let locations: Vec<Location> = match from {
        Some(f) => match Client::parse(f) {
            Some(c) => clients::locations(c, env),
            None => vec![file_location(Path::new(f))?],
        },
        None => Client::ALL
            .iter()
            .flat_map(|c| clients::locations(*c, env))
            .collect(),
    };
    let (config_path, known) = existing()?;
    let mut found: Vec<ClientServer> = Vec::new();
    let mut from_where: Vec<String> = Vec::new();
    for l in &locations {
        for s in servers_at(l)? {
            if matches!(&s.transport, Transport::Stdio { command, .. } if plan::is_mcpshare(command))
            {
                continue;
            }
            from_where.push(l.label());
            found.push(s);
        }
    }
    let outcomes = import::plan(&known, &found);
    let mut adds: Vec<(String, edit::New)> = Vec::new();
    for ((s, o), place) in found.iter().zip(&outcomes).zip(&from_where) {
        match o {
            Outcome::Add { name } => {
                let renamed = if *name != import::config_name(&s.name) {
                    format!(
                        " (renamed: '{}' is another server's name)",
                        import::config_name(&s.name)
                    )
                } else if *name != s.name {
                    format!(" (was '{}')", s.name)
                } else {
                    String::new()
                };
                println!("+ {name}  from {place}{renamed}");
                let mut ours: Vec<(String, Value)> = Vec::new();
                if s.disabled {
                    ours.push(("enabled".into(), Value::Bool(false)));
                }
                if let Some(t) = s.start_timeout_secs {
                    ours.push(("start_timeout_secs".into(), Value::from(t)));
                }
                if let Some(t) = s.request_timeout_secs {
                    ours.push(("request_timeout_secs".into(), Value::from(t)));
                }
                adds.push((name.clone(), config::entry(&launch_of(&s.transport), ours)));
            }
            Outcome::Same { name } => {
                println!("= {name}  from {place}: '{}' is the same server", s.name)
            }
            Outcome::Skipped(why) => println!("! {}  from {place}: skipped: {why}", s.name),
        }
    }
    if adds.is_empty() {
        println!("nothing new to import into {}", config_path.display());
        return Ok(0);
    }
    if dry_run {
        println!(
            "{} servers would be added to {} (nothing written: --dry-run)",
            adds.len(),
            config_path.display()
        );
        return Ok(0);
    }
    config::update(&config_path, None, |text| {
        adds.iter().try_fold(text.to_string(), |t, (name, entry)| {
            edit::put_server(&t, name, entry).map_err(|m| client_error(&config_path, m))
        })
    })?;
    println!("{} servers added to {}", adds.len(), config_path.display());
    Ok(0)
}

/// The absolute path of this mcpshare, for the entries connect writes.
fn this_exe() -> Result<String> {
    let exe =
        std::env::current_exe().map_err(|e| Error::io("cannot find this mcpshare's path", e))?;
    let exe = exe.canonicalize().unwrap_or(exe);
    Ok(exe.to_string_lossy().into_owned())
}

/// What the hub's entry must set for a client to find this mcpshare's
/// home and config: each of `MCPSHARE_HOME` and `MCPSHARE_CONFIG` whose
/// value here is not its default under `HOME`. A client does not always
/// pass its own environment to its servers (Codex passes a few variables;
/// an app started from a desktop never saw the shell's exports).
fn hub_env(home: &Home) -> Result<Vec<(String, String)>> {
    let user = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let mut out = Vec::new();
    let mut differs = |name: &str, here: &Path, default: Option<PathBuf>| {
        if default.as_deref() != Some(here) {
            out.push((name.to_string(), here.to_string_lossy().into_owned()));
        }
    };
    let config = config::path()?;
    differs(
        "MCPSHARE_CONFIG",
        &config,
        user.as_ref()
            .map(|h| h.join(".config").join("mcpshare").join("config.json")),
    );
    differs(
        "MCPSHARE_HOME",
        home.dir(),
        user.as_ref()
            .map(|h| h.join(".local").join("state").join("mcpshare")),
    );
    Ok(out)
}

/// The user file and Claude Code's local scopes, grouped by file: what
/// connect edits. Project files are shared with a team and left alone.
fn files_to_connect(env: &Env, c: Client) -> Vec<(PathBuf, Shape, Vec<Location>)> {
    let user = clients::paths::files(c, env).remove(0);
    let mut locs: Vec<Location> = clients::locations(c, env)
        .into_iter()
        .filter(|l| l.scope != Scope::Project)
        .collect();
    if !locs.iter().any(|l| l.scope == Scope::User) {
        locs.insert(
            0,
            Location {
                client: c,
                scope: Scope::User,
                path: user.path.clone(),
                shape: user.shape,
                keys: vec![user.shape.key().into()],
            },
        );
    }
    vec![(user.path, user.shape, locs)]
}

fn connect(home: &Home, env: &Env, c: Client, mode: Mode, dry_run: bool) -> Result<()> {
    let exe = this_exe()?;
    let hub_env = hub_env(home)?;
    let (_, known) = existing()?;
    let replaces = |s: &ClientServer| known.iter().any(|(_, t)| *t == s.transport);
    for (path, shape, locs) in files_to_connect(env, c) {
        if !clients::installed(c, env) {
            return Err(Error::Client {
                path,
                message: format!("{} does not look installed here", c.id()),
                hint: Some("see 'mcpshare clients'".into()),
            });
        }
        let targets: Vec<Target> = locs
            .iter()
            .map(|l| Target {
                keys: l.keys.clone(),
                hub_here: l.scope == Scope::User,
                replaces: &replaces,
            })
            .collect();
        // A running Claude Code rewrites its file: one more read on a change.
        let attempts = if c == Client::ClaudeCode { 2 } else { 1 };
        for attempt in 1..=attempts {
            let before = clients::read_text(&path)?;
            let text = before.clone().unwrap_or_default();
            let change = plan::connect(c, shape, &text, &targets, mode, &exe, &hub_env)
                .map_err(|m| client_error(&path, m))?;
            for n in &change.notes {
                println!("{}: note: {n}", c.id());
            }
            if change.after == text {
                println!("{}: {} already connected", c.id(), path.display());
                break;
            }
            print!(
                "{}",
                plan::diff(&path.to_string_lossy(), &text, &change.after)
            );
            if dry_run {
                println!("{}: nothing written (--dry-run)", c.id());
                break;
            }
            match write_connect(home, c, &path, before.as_deref(), &change, mode) {
                Err(e)
                    if attempt < attempts
                        && matches!(&e, Error::Client { message, .. } if message.contains("changed while")) =>
                {
                    continue;
                }
                r => r?,
            }
            println!(
                "{}: connected {} ({} replaced, {} added, {} wrapped)",
                c.id(),
                path.display(),
                change.removed.len(),
                change.added.len(),
                change.wrapped.len()
            );
            break;
        }
    }
    Ok(())
}

/// Backup, record, then the file; the record goes back as it was when
/// the file cannot be written.
fn write_connect(
    home: &Home,
    c: Client,
    path: &Path,
    before: Option<&str>,
    change: &Change,
    mode: Mode,
) -> Result<()> {
    let text = before.unwrap_or_default();
    let old = record::load(home, c.id(), path)?;
    let mut r = match &old {
        Some(r) => Record {
            backup_valid: r.backup_valid && r.written == text,
            ..r.clone()
        },
        None => {
            record::save_backup(home, c.id(), path, text)?;
            Record {
                client: c.id().into(),
                path: path.to_path_buf(),
                mode: String::new(),
                written: String::new(),
                // A file that did not exist has nothing to restore.
                backup_valid: before.is_some(),
                removed: Vec::new(),
                added: Vec::new(),
                wrapped: Vec::new(),
            }
        }
    };
    r.mode = if mode == Mode::Hub { "hub" } else { "wrap" }.into();
    r.written = change.after.clone();
    r.removed.extend(change.removed.iter().cloned());
    r.added.extend(change.added.iter().cloned());
    r.wrapped.extend(change.wrapped.iter().cloned());
    record::save(home, &r)?;
    let wrote = if c == Client::ClaudeCode && claude_on_path() {
        through_claude(change).and_then(|()| {
            // `claude` wrote the file its own way: record what it wrote.
            r.written = clients::read_text(path)?.unwrap_or_default();
            r.backup_valid = false;
            record::save(home, &r)
        })
    } else {
        record::replace(path, before, &change.after)
    };
    if wrote.is_err() {
        let now = clients::read_text(path).ok().flatten();
        if now.as_deref() == before {
            // Nothing was changed: the record goes back to what it was.
            match old {
                Some(o) => record::save(home, &o)?,
                None => record::forget(home, c.id(), path)?,
            }
        } else {
            // `claude` changed the file part way: keep the record and its
            // backup, so that disconnect can put back what was there.
            r.written = now.unwrap_or_default();
            r.backup_valid = false;
            record::save(home, &r)?;
        }
    }
    wrote
}

fn claude_on_path() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("claude").is_file()))
}

/// Claude Code's own commands, when `claude` is installed: `claude mcp
/// remove` and `claude mcp add-json` at user scope (local scopes run in
/// their project's directory), each bounded by [`CLAUDE_CLI_TIMEOUT`].
fn through_claude(change: &Change) -> Result<()> {
    if !change.wrapped.is_empty() {
        return Err(Error::Usage(
            "--mode wrap with 'claude' on PATH: not supported; use --mode hub".into(),
        ));
    }
    claude_edit(&change.added, &change.removed)
}

/// `claude mcp add-json` each of `add`, then `claude mcp remove` each of
/// `remove`: adding first, a failure part way leaves an entry too many,
/// never one lost.
fn claude_edit(add: &[Entry], remove: &[Entry]) -> Result<()> {
    let scope = |keys: &[String]| match keys {
        [p, dir, _] if p == "projects" => ("local", PathBuf::from(dir)),
        _ => ("user", std::env::temp_dir()),
    };
    for e in add {
        let (s, dir) = scope(&e.keys);
        claude(&["mcp", "add-json", "--scope", s, &e.name, &e.text], &dir)?;
    }
    for e in remove {
        let (s, dir) = scope(&e.keys);
        claude(&["mcp", "remove", "--scope", s, &e.name], &dir)?;
    }
    Ok(())
}

fn claude(args: &[&str], dir: &Path) -> Result<()> {
    let mut child = std::process::Command::new("claude")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| Error::io("cannot run claude", e))?;
    let deadline = Instant::now() + CLAUDE_CLI_TIMEOUT;
    loop {
        if let Some(st) = child.try_wait().map_err(|e| Error::io("claude", e))? {
            return if st.success() {
                Ok(())
            } else {
                Err(Error::Daemon(format!(
                    "'claude {}' failed: {st}",
                    args.join(" ")
                )))
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Daemon(format!(
                "'claude {}' did not finish in {}s",
                args.join(" "),
                CLAUDE_CLI_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What disconnect's new text `after` undoes in Claude Code's `text`, as
/// `claude mcp` calls: the removed entries it puts back, and the added
/// ones it takes out.
fn claude_undo(
    r: &Record,
    text: &str,
    after: &str,
) -> std::result::Result<(Vec<Entry>, Vec<Entry>), String> {
    let has = |t: &str, e: &Entry| -> std::result::Result<bool, String> {
        Ok(plan::names_at(t, &e.keys)?.contains(&e.name))
    };
    let mut put_back = Vec::new();
    for e in &r.removed {
        if !has(text, e)? && has(after, e)? {
            put_back.push(e.clone());
        }
    }
    let mut take_out = Vec::new();
    for e in &r.added {
        if has(text, e)? && !has(after, e)? {
            take_out.push(e.clone());
        }
    }
    Ok((put_back, take_out))
}

fn disconnect(home: &Home, env: &Env, c: Client, named: bool) -> Result<()> {
    let path = clients::paths::files(c, env).remove(0).path;
    let shape = clients::paths::files(c, env)[0].shape;
    let Some(r) = record::load(home, c.id(), &path)? else {
        if named {
            println!(
                "{}: not connected (no record of a connect of {})",
                c.id(),
                path.display()
            );
        }
        return Ok(());
    };
    let before = clients::read_text(&path)?;
    let text = before.clone().unwrap_or_default();
    let backup = record::read_backup(home, c.id(), &path)?;
    let (after, notes) = match backup {
        Some(b) if r.backup_valid && text == r.written => (
            b,
            vec!["restored the backup: the file was as connect left it".to_string()],
        ),
        _ => plan::disconnect(shape, &text, &r.removed, &r.added, &r.wrapped)
            .map_err(|m| client_error(&path, m))?,
    };
    for n in &notes {
        println!("{}: {n}", c.id());
    }
    if after != text {
        print!("{}", plan::diff(&path.to_string_lossy(), &text, &after));
        if c == Client::ClaudeCode && r.wrapped.is_empty() && claude_on_path() {
            // As connect: a running claude would write over our edit.
            let (put_back, take_out) =
                claude_undo(&r, &text, &after).map_err(|m| client_error(&path, m))?;
            claude_edit(&put_back, &take_out)?;
        } else {
            record::replace(&path, before.as_deref(), &after)?;
        }
    }
    record::forget(home, c.id(), &path)?;
    println!("{}: disconnected {}", c.id(), path.display());
    Ok(())
}
