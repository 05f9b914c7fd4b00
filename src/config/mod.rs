//! mcpshare's own config file: the servers the daemon runs by name, in
//! Claude Desktop's `mcpServers` format plus an optional `mcpshare` object
//! per server. This module owns where the file is, what a valid one is,
//! and every write to it (lock, re-read, splice, temp + rename). It never
//! writes a file it could not parse, never drops a key it does not know
//! outside its own `mcpshare` objects, and never starts a process except
//! the dependency installs of `source`.

pub mod edit;
pub mod source;
mod write;

pub use write::{Written, lock_path, private_dir_of, update};

use crate::error::{ConfigError, Error, Result};
use edit::New;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The longest server name. Exposed tool names are `server__tool` and
/// clients cap tool names at 60 or 64 characters: a short server name
/// leaves the tool its room.
pub const MAX_NAME_LEN: usize = 32;

/// The keys of our own `mcpshare` object; any other is an error there.
pub const MCPSHARE_KEYS: &[&str] = &[
    "share",
    "lazy",
    "enabled",
    "tools",
    "aliases",
    "start_timeout_secs",
    "request_timeout_secs",
    "idle_secs",
    "memory_mb",
    "cpus",
    "runtime",
    "source",
];

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// In file order.
    pub servers: Vec<Server>,
}

impl Config {
    pub fn get(&self, name: &str) -> Option<&Server> {
        self.servers.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub name: String,
    pub launch: Launch,
    pub share: Share,
    pub lazy: bool,
    pub enabled: bool,
    pub tools: ToolFilter,
    /// Tool name → the name clients see.
    pub aliases: BTreeMap<String, String>,
    pub start_timeout_secs: Option<u64>,
    pub request_timeout_secs: Option<u64>,
    pub idle_secs: Option<u64>,
    pub memory_mb: Option<u64>,
    pub cpus: Option<f64>,
    pub runtime: Option<Runtime>,
    pub source: Option<PathBuf>,
}

impl Server {
    /// Must a running instance restart to apply `new`? True when what the
    /// process was started with differs (command, args, env, cwd, url,
    /// headers, sharing, limits, source or runtime); filters, aliases,
    /// `lazy`, `enabled` and timeouts apply without a restart.
    pub fn restart_needed(&self, new: &Server) -> bool {
        self.launch != new.launch
            || self.share != new.share
            || self.memory_mb != new.memory_mb
            || self.cpus != new.cpus
            || self.source != new.source
            || self.runtime != new.runtime
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// Values may hold `${VAR}` references: [`expand`] them at launch.
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: Option<PathBuf>,
    },
    Remote {
        kind: RemoteKind,
        url: String,
        headers: BTreeMap<String, String>,
    },
}

impl Launch {
    /// The launch with `${VAR}` references in env values, args and
    /// headers expanded by `lookup` (the daemon's environment at start);
    /// the error names the variable and where it is.
    pub fn expand(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> std::result::Result<Launch, String> {
        let one = |what: &str, s: &str| expand(s, &lookup).map_err(|e| format!("{what}: {e}"));
        let map = |what: &str, m: &BTreeMap<String, String>| {
            m.iter()
                .map(|(k, v)| Ok((k.clone(), one(&format!("{what} {k}"), v)?)))
                .collect::<std::result::Result<BTreeMap<_, _>, String>>()
        };
        Ok(match self {
            Launch::Stdio {
                command,
                args,
                env,
                cwd,
            } => Launch::Stdio {
                command: command.clone(),
                args: args
                    .iter()
                    .map(|a| one("args", a))
                    .collect::<std::result::Result<_, _>>()?,
                env: map("env", env)?,
                cwd: cwd.clone(),
            },
            Launch::Remote { kind, url, headers } => Launch::Remote {
                kind: *kind,
                url: url.clone(),
                headers: map("header", headers)?,
            },
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    /// Streamable HTTP.
    Http,
    Sse,
}

impl RemoteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteKind::Http => "http",
            RemoteKind::Sse => "sse",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Share {
    #[default]
    Shared,
    PerCwd,
    PerClient,
}

impl Share {
    pub const ALL: [(&str, Share); 3] = [
        ("shared", Share::Shared),
        ("per-cwd", Share::PerCwd),
        ("per-client", Share::PerClient),
    ];

    pub fn parse(s: &str) -> Option<Share> {
        Share::ALL.iter().find(|(n, _)| *n == s).map(|(_, v)| *v)
    }

    pub fn as_str(self) -> &'static str {
        Share::ALL
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("", |(n, _)| n)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Node,
    Bun,
    Python,
}

impl Runtime {
    pub const ALL: [(&str, Runtime); 3] = [
        ("node", Runtime::Node),
        ("bun", Runtime::Bun),
        ("python", Runtime::Python),
    ];

    pub fn parse(s: &str) -> Option<Runtime> {
        Runtime::ALL.iter().find(|(n, _)| *n == s).map(|(_, v)| *v)
    }

    pub fn as_str(self) -> &'static str {
        Runtime::ALL
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("", |(n, _)| n)
    }
}

/// Which tools of a server clients see: `allow` (all when absent), minus
/// `deny`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolFilter {
    pub allow: Option<Vec<String>>,
    pub deny: Vec<String>,
}

impl ToolFilter {
    pub fn admits(&self, tool: &str) -> bool {
        self.allow
            .as_ref()
            .is_none_or(|a| a.iter().any(|t| t == tool))
            && !self.deny.iter().any(|t| t == tool)
    }
}

/// The config file's path: `MCPSHARE_CONFIG`, else
/// `$XDG_CONFIG_HOME/mcpshare/config.json`, else
/// `$HOME/.config/mcpshare/config.json`.
pub fn path() -> Result<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = var("MCPSHARE_CONFIG") {
        return Ok(PathBuf::from(p));
    }
    let base = match var("XDG_CONFIG_HOME") {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(var("HOME").or_else(|| var("USERPROFILE")).ok_or_else(|| {
            Error::Usage("none of MCPSHARE_CONFIG, XDG_CONFIG_HOME and HOME is set".into())
        })?)
        .join(".config"),
    };
    Ok(base.join("mcpshare").join("config.json"))
}

/// Read and validate the config; a missing file is an empty config.
pub fn load(path: &Path) -> std::result::Result<Config, ConfigError> {
    match read(path)? {
        Some(text) => parse(path, &text),
        None => Ok(Config::default()),
    }
}

/// The file's text, None when it does not exist.
pub fn read(path: &Path) -> std::result::Result<Option<String>, ConfigError> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|e| {
            let (line, column) = edit::position(
                &String::from_utf8_lossy(e.as_bytes()),
                e.utf8_error().valid_up_to(),
            );
            ConfigError {
                line,
                column,
                ..problem(path, None, "the file is not UTF-8", None)
            }
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(problem(
            path,
            None,
            &format!("cannot read: {}", Error::Path(path.into(), e)),
            None,
        )),
    }
}

pub(super) fn problem(
    path: &Path,
    server: Option<&str>,
    message: &str,
    hint: Option<&str>,
) -> ConfigError {
    ConfigError {
        path: path.to_path_buf(),
        server: server.map(str::to_string),
        line: 0,
        column: 0,
        message: message.to_string(),
        hint: hint.map(str::to_string),
    }
}

/// Parse and validate `text` (the content of `path`, named in errors).
/// `command` is not looked up here: a file copied from another machine
/// still loads, and a missing command is reported when `add` writes it
/// and when the server starts.
pub fn parse(path: &Path, text: &str) -> std::result::Result<Config, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Config::default());
    }
    let doc: Value = serde_json::from_str(text).map_err(|e| ConfigError {
        line: e.line(),
        column: e.column(),
        ..problem(
            path,
            None,
            &format!("invalid JSON: {}", without_position(&e.to_string())),
            Some("fix the file by hand or with 'mcpshare edit'; the last good config stays in use"),
        )
    })?;
    if !doc.is_object() {
        return Err(problem(
            path,
            None,
            "the file must hold one JSON object",
            Some("write {\"mcpServers\": {}}"),
        ));
    }
    let scan_err = |e: String| problem(path, None, &e, None);
    let Some(obj) = edit::servers(text).map_err(scan_err)? else {
        return Ok(Config::default());
    };
    let mut servers: Vec<Server> = Vec::new();
    for m in edit::members(text, obj).map_err(scan_err)? {
        let at = |offset: usize, message: String, hint: &str| {
            let (line, column) = edit::position(text, offset);
            ConfigError {
                line,
                column,
                ..problem(path, Some(&m.key), &message, Some(hint))
            }
        };
        if let Err(why) = check_name(&m.key) {
            return Err(at(m.key_start, why, "rename the entry"));
        }
        if servers.iter().any(|s| s.name == m.key) {
            return Err(at(
                m.key_start,
                "the name is used twice".into(),
                "rename or remove one of the entries",
            ));
        }
        let value: Value = serde_json::from_str(&text[m.value.clone()])
            .map_err(|e| at(m.value.start, e.to_string(), ""))?;
        let server = server(&m.key, &value).map_err(|(why, hint)| {
            // Point at the offending key of our object when it is one.
            let offset = unknown_key_offset(text, &m).unwrap_or(m.key_start);
            at(offset, why, hint)
        })?;
        servers.push(server);
    }
    Ok(Config { servers })
}

/// serde_json's message without its " at line L column C" (we print
/// the position first, as compilers do).
fn without_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

fn unknown_key_offset(text: &str, m: &edit::Member) -> Option<usize> {
    let ours = edit::member(text, m.value.clone(), "mcpshare").ok()??;
    edit::members(text, ours.value)
        .ok()?
        .into_iter()
        .find(|k| !MCPSHARE_KEYS.contains(&k.key.as_str()))
        .map(|k| k.key_start)
}

/// A server name: `[a-z0-9-]`, at most [`MAX_NAME_LEN`], no leading or
/// trailing `-` (so never `__`, the separator of exposed tool names).
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    let fix = "use lowercase letters, digits and '-'";
    if name.is_empty() {
        return Err("the server name is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "the name '{name}' is longer than {MAX_NAME_LEN} characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!("the name '{name}' has '{c}': {fix}"));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(format!(
            "the name '{name}' starts or ends with '-': {fix}, not at either end"
        ));
    }
    Ok(())
}

type Invalid = (String, &'static str);

fn server(name: &str, v: &Value) -> std::result::Result<Server, Invalid> {
    let obj = v.as_object().ok_or((
        "the entry must be an object".to_string(),
        "write {\"command\": ..., \"args\": [...]} or {\"type\": \"http\", \"url\": ...}",
    ))?;
    let launch = launch(obj)?;
    let mut s = Server {
        name: name.to_string(),
        launch,
        share: Share::Shared,
        lazy: true,
        enabled: true,
        tools: ToolFilter::default(),
        aliases: BTreeMap::new(),
        start_timeout_secs: None,
        request_timeout_secs: None,
        idle_secs: None,
        memory_mb: None,
        cpus: None,
        runtime: None,
        source: None,
    };
    let Some(ours) = obj.get("mcpshare") else {
        return Ok(s);
    };
    let ours = ours.as_object().ok_or((
        "\"mcpshare\" must be an object".to_string(),
        "see FILES in mcpshare(1)",
    ))?;
    for (k, v) in ours {
        let key = |what: &str| {
            (
                format!("\"mcpshare.{k}\" must be {what}"),
                "see FILES in mcpshare(1)",
            )
        };
        match k.as_str() {
            "share" => {
                s.share = v
                    .as_str()
                    .and_then(Share::parse)
                    .ok_or_else(|| key("one of \"shared\", \"per-cwd\", \"per-client\""))?
            }
            "lazy" => s.lazy = v.as_bool().ok_or_else(|| key("true or false"))?,
            "enabled" => s.enabled = v.as_bool().ok_or_else(|| key("true or false"))?,
            "tools" => s.tools = tools(v)?,
            "aliases" => s.aliases = strings_map(v).ok_or_else(|| key("an object of strings"))?,
            "start_timeout_secs" => {
                s.start_timeout_secs =
                    Some(positive(v).ok_or_else(|| key("a whole number of seconds above 0"))?)
            }
            "request_timeout_secs" => {
                s.request_timeout_secs =
                    Some(positive(v).ok_or_else(|| key("a whole number of seconds above 0"))?)
            }
            "idle_secs" => {
                s.idle_secs = Some(v.as_u64().ok_or_else(|| key("a whole number of seconds"))?)
            }
            "memory_mb" => {
                s.memory_mb = Some(positive(v).ok_or_else(|| key("a whole number of MiB above 0"))?)
            }
            "cpus" => {
                s.cpus = Some(
                    v.as_f64()
                        .filter(|c| *c > 0.0 && c.is_finite())
                        .ok_or_else(|| key("a number of CPUs above 0"))?,
                )
            }
            "runtime" => {
                s.runtime = Some(
                    v.as_str()
                        .and_then(Runtime::parse)
                        .ok_or_else(|| key("one of \"node\", \"bun\", \"python\""))?,
                )
            }
            "source" => {
                s.source = Some(PathBuf::from(
                    v.as_str().ok_or_else(|| key("a directory path"))?,
                ))
            }
            other => {
                return Err((
                    format!(
                        "unknown key \"{other}\" in \"mcpshare\"; known keys: {}",
                        MCPSHARE_KEYS.join(", ")
                    ),
                    "fix the spelling, or move your own keys outside \"mcpshare\" (kept as they are there)",
                ));
            }
        }
    }
    Ok(s)
}

fn positive(v: &Value) -> Option<u64> {
    v.as_u64().filter(|n| *n > 0)
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect()
}

fn strings_map(v: &Value) -> Option<BTreeMap<String, String>> {
    v.as_object()?
        .iter()
        .map(|(k, x)| Some((k.clone(), x.as_str()?.to_string())))
        .collect()
}

fn tools(v: &Value) -> std::result::Result<ToolFilter, Invalid> {
    let hint = "write {\"allow\": [\"tool\", ...], \"deny\": [\"tool\", ...]}";
    let obj = v
        .as_object()
        .ok_or(("\"mcpshare.tools\" must be an object".to_string(), hint))?;
    let mut f = ToolFilter::default();
    for (k, v) in obj {
        let list = strings(v).ok_or((
            format!("\"mcpshare.tools.{k}\" must be an array of strings"),
            hint,
        ));
        match k.as_str() {
            "allow" => f.allow = Some(list?),
            "deny" => f.deny = list?,
            other => {
                return Err((
                    format!(
                        "unknown key \"{other}\" in \"mcpshare.tools\"; known keys: allow, deny"
                    ),
                    hint,
                ));
            }
        }
    }
    Ok(f)
}

fn launch(obj: &Map<String, Value>) -> std::result::Result<Launch, Invalid> {
    let field = |k: &str, what: &str| -> Invalid {
        (
            format!("\"{k}\" must be {what}"),
            "see FILES in mcpshare(1)",
        )
    };
    let kind = match obj.get("type") {
        None => None,
        Some(t) => Some(t.as_str().ok_or_else(|| field("type", "a string"))?),
    };
    match (obj.get("command"), obj.get("url")) {
        (Some(_), Some(_)) => Err((
            "the entry has both \"command\" and \"url\"".into(),
            "keep \"command\" for a local server or \"url\" for a remote one",
        )),
        (None, None) => Err((
            "the entry has neither \"command\" nor \"url\"".into(),
            "add \"command\" (a local server) or \"type\" and \"url\" (a remote one)",
        )),
        (Some(command), None) => {
            if kind.is_some_and(|k| k != "stdio") {
                return Err(field("type", "\"stdio\" (or absent) with \"command\""));
            }
            let command = command
                .as_str()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| field("command", "a non-empty string"))?;
            let args = match obj.get("args") {
                None => Vec::new(),
                Some(a) => strings(a).ok_or_else(|| field("args", "an array of strings"))?,
            };
            let env = match obj.get("env") {
                None => BTreeMap::new(),
                Some(e) => strings_map(e).ok_or_else(|| field("env", "an object of strings"))?,
            };
            let cwd = match obj.get("cwd") {
                None => None,
                Some(c) => Some(PathBuf::from(
                    c.as_str().ok_or_else(|| field("cwd", "a directory path"))?,
                )),
            };
            Ok(Launch::Stdio {
                command: command.to_string(),
                args,
                env,
                cwd,
            })
        }
        (None, Some(url)) => {
            let kind = match kind {
                None | Some("http") | Some("streamable-http") => RemoteKind::Http,
                Some("sse") => RemoteKind::Sse,
                Some(_) => return Err(field("type", "\"http\" or \"sse\" with \"url\"")),
            };
            let url = url
                .as_str()
                .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                .ok_or_else(|| field("url", "an http:// or https:// URL"))?;
            let headers = match obj.get("headers") {
                None => BTreeMap::new(),
                Some(h) => {
                    strings_map(h).ok_or_else(|| field("headers", "an object of strings"))?
                }
            };
            Ok(Launch::Remote {
                kind,
                url: url.to_string(),
                headers,
            })
        }
    }
}

/// Expand `${VAR}` and `${VAR:-default}` in `s` with `lookup` (the
/// environment, at launch). A `$` not followed by `{` stays as it is. An
/// unset variable without a default is an error naming it.
pub fn expand(
    s: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("'${{' without a closing '}}' in \"{s}\""))?;
        let inner = &after[..end];
        let (var, default) = match inner.split_once(":-") {
            Some((v, d)) => (v, Some(d)),
            None => (inner, None),
        };
        if !is_var_name(var) {
            return Err(format!(
                "'${{{inner}}}' is not a variable reference: write ${{NAME}} or ${{NAME:-default}}"
            ));
        }
        match (
            lookup(var).filter(|v| !v.is_empty() || default.is_none()),
            default,
        ) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "environment variable {var} is not set (referenced as ${{{var}}})"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_var_name(v: &str) -> bool {
    let mut c = v.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// How `list` and `status` show an env or header value: a lone
/// `${VAR}` reference as written (the default of `${VAR:-…}` hidden),
/// anything else `<hidden>`. Never the value itself.
pub fn shown_value(v: &str) -> String {
    if let Some(inner) = v.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        let (var, default) = match inner.split_once(":-") {
            Some((var, _)) => (var, true),
            None => (inner, false),
        };
        if is_var_name(var) {
            return if default {
                format!("${{{var}:-…}}")
            } else {
                format!("${{{var}}}")
            };
        }
    }
    "<hidden>".to_string()
}

/// Find `command` as a launch would: a name with a path separator is a
/// path (relative to `cwd`), and must exist and be executable; a bare name
/// is searched in `path_var` (PATH). None when it cannot be run.
pub fn resolve_command(
    command: &str,
    cwd: Option<&Path>,
    path_var: Option<&std::ffi::OsStr>,
) -> Option<PathBuf> {
    let p = Path::new(command);
    if command.contains('/') || command.contains(std::path::MAIN_SEPARATOR) {
        let full = match cwd {
            Some(d) if p.is_relative() => d.join(p),
            _ => p.to_path_buf(),
        };
        return is_executable(&full).then_some(full);
    }
    std::env::split_paths(path_var?).find_map(|dir| {
        let candidates = if cfg!(windows) {
            vec![
                dir.join(format!("{command}.exe")),
                dir.join(format!("{command}.cmd")),
                dir.join(command),
            ]
        } else {
            vec![dir.join(command)]
        };
        candidates.into_iter().find(|c| is_executable(c))
    })
}

fn is_executable(p: &Path) -> bool {
    let Ok(md) = std::fs::metadata(p) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        md.is_file() && md.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        md.is_file()
    }
}

/// The file text of a new server entry, keys in the usual order.
pub fn entry(launch: &Launch, ours: Vec<(String, Value)>) -> New {
    let mut pairs: Vec<(String, New)> = Vec::new();
    let mut put = |k: &str, v: Value| pairs.push((k.to_string(), New::Value(v)));
    match launch {
        Launch::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            put("command", Value::from(command.as_str()));
            put("args", Value::from(args.clone()));
            if !env.is_empty() {
                put("env", serde_json::to_value(env).unwrap_or_default());
            }
            if let Some(c) = cwd {
                put("cwd", Value::from(c.to_string_lossy().into_owned()));
            }
        }
        Launch::Remote { kind, url, headers } => {
            put("type", Value::from(kind.as_str()));
            put("url", Value::from(url.as_str()));
            if !headers.is_empty() {
                put("headers", serde_json::to_value(headers).unwrap_or_default());
            }
        }
    }
    if !ours.is_empty() {
        pairs.push((
            "mcpshare".to_string(),
            New::Object(ours.into_iter().map(|(k, v)| (k, New::Value(v))).collect()),
        ));
    }
    New::Object(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> PathBuf {
        PathBuf::from("/cfg/config.json")
    }

    fn err(text: &str) -> ConfigError {
        parse(&p(), text).expect_err(text)
    }

    #[test]
    fn a_pasted_claude_desktop_file_loads_in_order_with_defaults() {
        let text = r#"{"mcpServers": {
  "zeta": {"command": "npx", "args": ["-y", "@x/fs"], "env": {"K": "${K}"}, "autoApprove": []},
  "alpha": {"type": "sse", "url": "https://h/sse", "headers": {"A": "b"}}
}, "globalShortcut": "x"}"#;
        let c = parse(&p(), text).unwrap();
        let names: Vec<&str> = c.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["zeta", "alpha"]);
        let z = &c.servers[0];
        assert!(z.lazy && z.enabled && z.share == Share::Shared);
        assert_eq!(
            z.launch,
            Launch::Stdio {
                command: "npx".into(),
                args: vec!["-y".into(), "@x/fs".into()],
                env: [("K".to_string(), "${K}".to_string())].into(),
                cwd: None
            }
        );
        assert!(matches!(
            c.servers[1].launch,
            Launch::Remote {
                kind: RemoteKind::Sse,
                ..
            }
        ));
    }

    #[test]
    fn our_object_is_read_and_checked() {
        let text = r#"{"mcpServers": {"a": {"command": "x", "mcpshare": {"share": "per-cwd", "lazy": false, "enabled": false,
            "tools": {"allow": ["r", "w"], "deny": ["w"]}, "aliases": {"r": "read"}, "memory_mb": 512, "cpus": 0.5,
            "start_timeout_secs": 9, "request_timeout_secs": 8, "idle_secs": 0, "runtime": "python", "source": "/src"}}}}"#;
        let s = parse(&p(), text).unwrap().servers.remove(0);
        assert_eq!(s.share, Share::PerCwd);
        assert!(!s.lazy && !s.enabled);
        assert!(s.tools.admits("r") && !s.tools.admits("w") && !s.tools.admits("x"));
        assert_eq!(s.aliases["r"], "read");
        assert_eq!(
            (s.memory_mb, s.cpus, s.idle_secs),
            (Some(512), Some(0.5), Some(0))
        );
        assert_eq!(s.runtime, Some(Runtime::Python));
        assert_eq!(s.source, Some(PathBuf::from("/src")));
    }

    #[test]
    fn invalid_json_names_line_and_column() {
        let e = err("{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\",}\n  }\n}");
        assert_eq!((e.line, e.column), (3, 26));
        assert!(
            e.to_string()
                .starts_with("/cfg/config.json:3:26: invalid JSON: trailing comma"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_in_our_object_is_named_with_the_known_ones_and_its_position() {
        let e = err(
            "{\"mcpServers\": {\"a\": {\"command\": \"x\",\n \"mcpshare\": {\"lazzy\": true}}}}",
        );
        assert_eq!(e.server.as_deref(), Some("a"));
        assert!(
            e.message.contains("\"lazzy\"") && e.message.contains("share, lazy, enabled"),
            "{e}"
        );
        assert_eq!((e.line, e.column), (2, 15));
        let e = err(
            r#"{"mcpServers": {"a": {"command": "x", "mcpshare": {"tools": {"permit": []}}}}}"#,
        );
        assert!(e.message.contains("\"permit\""), "{e}");
    }

    #[test]
    fn unknown_keys_outside_our_object_are_fine() {
        parse(
            &p(),
            r#"{"x": 1, "mcpServers": {"a": {"command": "x", "disabled": true, "y": {}}}}"#,
        )
        .unwrap();
    }

    #[test]
    fn field_types_and_exclusive_fields_are_checked() {
        for (text, says) in [
            (
                r#"{"mcpServers": {"a": {"command": "x", "args": "y"}}}"#,
                "\"args\" must be an array of strings",
            ),
            (
                r#"{"mcpServers": {"a": {"command": "x", "env": {"K": 1}}}}"#,
                "\"env\" must be an object of strings",
            ),
            (
                r#"{"mcpServers": {"a": {"command": "x", "url": "http://h"}}}"#,
                "both",
            ),
            (r#"{"mcpServers": {"a": {"args": []}}}"#, "neither"),
            (
                r#"{"mcpServers": {"a": {"type": "ws", "url": "http://h"}}}"#,
                "\"type\"",
            ),
            (r#"{"mcpServers": {"a": {"url": "ftp://h"}}}"#, "\"url\""),
            (
                r#"{"mcpServers": {"a": {"command": "x", "mcpshare": {"share": "all"}}}}"#,
                "per-cwd",
            ),
            (
                r#"{"mcpServers": {"a": {"command": "x", "mcpshare": {"memory_mb": 0}}}}"#,
                "memory_mb",
            ),
            (
                r#"{"mcpServers": {"a": {"command": "x", "mcpshare": {"cpus": "2"}}}}"#,
                "cpus",
            ),
            (r#"{"mcpServers": {"a": 3}}"#, "must be an object"),
            (r#"{"mcpServers": []}"#, "\"mcpServers\" must be an object"),
            ("[]", "one JSON object"),
        ] {
            let e = err(text);
            assert!(e.message.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn names_are_checked_and_unique() {
        for bad in [
            "",
            "A",
            "a_b",
            "a__b",
            "-a",
            "a-",
            "a.b",
            "é",
            &"a".repeat(33),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "fs-2", "0", &"a".repeat(32)] {
            check_name(good).unwrap();
        }
        let e = err(r#"{"mcpServers": {"Fs": {"command": "x"}}}"#);
        assert!(e.message.contains("'F'"), "{e}");
        let e =
            err("{\"mcpServers\": {\"a\": {\"command\": \"x\"},\n \"a\": {\"command\": \"y\"}}}");
        assert!(e.message.contains("twice") && e.line == 2, "{e}");
    }

    #[test]
    fn empty_or_missing_is_an_empty_config() {
        assert!(parse(&p(), "").unwrap().servers.is_empty());
        assert!(parse(&p(), "{}").unwrap().servers.is_empty());
        assert!(
            load(Path::new("/nonexistent/mcpshare/config.json"))
                .unwrap()
                .servers
                .is_empty()
        );
    }

    #[test]
    fn restart_needed_only_for_launch_fields() {
        let base = r#"{"mcpServers": {"a": {"command": "x", "args": ["1"], "mcpshare": {"tools": {"deny": ["t"]}}}}}"#;
        let a = parse(&p(), base).unwrap().servers.remove(0);
        let same_launch = parse(&p(), r#"{"mcpServers": {"a": {"command": "x", "args": ["1"], "mcpshare": {"aliases": {"t": "u"}, "lazy": false}}}}"#).unwrap().servers.remove(0);
        assert!(!a.restart_needed(&same_launch));
        for changed in [
            r#"{"mcpServers": {"a": {"command": "x", "args": ["2"]}}}"#,
            r#"{"mcpServers": {"a": {"command": "x", "args": ["1"], "env": {"K": "v"}}}}"#,
            r#"{"mcpServers": {"a": {"command": "x", "args": ["1"], "mcpshare": {"share": "per-client"}}}}"#,
            r#"{"mcpServers": {"a": {"command": "x", "args": ["1"], "mcpshare": {"memory_mb": 5}}}}"#,
            r#"{"mcpServers": {"a": {"url": "http://h"}}}"#,
        ] {
            let b = parse(&p(), changed).unwrap().servers.remove(0);
            assert!(a.restart_needed(&b), "{changed}");
        }
    }

    #[test]
    fn expansion_of_references_and_defaults() {
        let env = |k: &str| match k {
            "HOME" => Some("/h".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        assert_eq!(expand("${HOME}/x", env).unwrap(), "/h/x");
        assert_eq!(expand("a${NOPE:-d:e}b", env).unwrap(), "ad:eb");
        assert_eq!(expand("${EMPTY:-d}", env).unwrap(), "d");
        assert_eq!(expand("${EMPTY}", env).unwrap(), "");
        assert_eq!(
            expand("$HOME $ {x} ${HOME}${HOME}", env).unwrap(),
            "$HOME $ {x} /h/h"
        );
        assert!(expand("${NOPE}", env).unwrap_err().contains("NOPE"));
        assert!(expand("${HOME", env).is_err());
        assert!(expand("${env:HOME}", env).is_err());
    }

    #[test]
    fn a_launch_expands_env_args_and_headers() {
        let c = parse(&p(), r#"{"mcpServers": {"a": {"command": "${NOT_EXPANDED}", "args": ["--dir=${D:-/tmp}"], "env": {"T": "${TOK}"}},
            "r": {"url": "https://h", "headers": {"A": "Bearer ${TOK}"}}}}"#).unwrap();
        let env = |k: &str| (k == "TOK").then(|| "sk".to_string());
        let Launch::Stdio {
            command,
            args,
            env: e,
            ..
        } = c.servers[0].launch.expand(env).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (command.as_str(), args, e["T"].as_str()),
            ("${NOT_EXPANDED}", vec!["--dir=/tmp".to_string()], "sk")
        );
        let Launch::Remote { headers, .. } = c.servers[1].launch.expand(env).unwrap() else {
            panic!()
        };
        assert_eq!(headers["A"], "Bearer sk");
        let err = c.servers[1].launch.expand(|_| None).unwrap_err();
        assert!(
            err.starts_with("header A: environment variable TOK is not set"),
            "{err}"
        );
    }

    #[test]
    fn shown_values_never_reveal_literals_or_defaults() {
        assert_eq!(shown_value("${TOKEN}"), "${TOKEN}");
        assert_eq!(shown_value("${TOKEN:-sk-123}"), "${TOKEN:-…}");
        assert_eq!(shown_value("sk-123"), "<hidden>");
        assert_eq!(shown_value("Bearer ${TOKEN}"), "<hidden>");
        assert_eq!(shown_value("${A}${B}"), "<hidden>");
    }

    #[test]
    fn commands_resolve_on_path_or_as_paths() {
        let path = std::env::var_os("PATH");
        assert!(resolve_command("sh", None, path.as_deref()).is_some());
        assert!(resolve_command("no-such-command-mcpshare", None, path.as_deref()).is_none());
        assert!(resolve_command("/bin/sh", None, None).is_some());
        assert!(resolve_command("./sh", Some(Path::new("/bin")), None).is_some());
        assert!(resolve_command("/etc/hostname-not-here", None, None).is_none());
    }
}
