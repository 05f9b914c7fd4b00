//! `mcpshare status`: the daemon's status, as a table or one JSON object.
//! It only reads: it never starts a daemon and never changes one.

use crate::error::{Error, Result};
use crate::log;
use crate::state::home::Home;
use serde_json::{Value, json};

/// The daemon's status, or None when none runs.
fn fetch_status(home: &Home) -> Result<Option<Value>> {
    Ok(super::target::daemon_status(home)?.map(|(_, st)| st))
}

pub(super) fn status(home: &Home, as_json: bool) -> Result<i32> {
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
    print!("{}", render_servers(&st));
    print!("{}", render_near_misses(&st));
    Ok(0)
}

/// The configured servers: name, state (with why or when), pids, sessions;
/// and the config's error, if its newest version is not in force.
pub fn render_servers(st: &Value) -> String {
    let config = &st["config"];
    let servers = config["servers"].as_array().cloned().unwrap_or_default();
    let mut s = String::new();
    if let Some(e) = config["error"].as_str() {
        s.push_str(&format!(
            "\nconfig not applied (the last good one runs): {e}\n"
        ));
    }
    if servers.is_empty() {
        return s;
    }
    s.push_str(&format!(
        "\nconfigured servers ({}):\n",
        config["path"].as_str().unwrap_or("?")
    ));
    let width = servers
        .iter()
        .filter_map(|v| v["name"].as_str())
        .map(str::len)
        .max()
        .unwrap_or(4)
        .max(4);
    s.push_str(&format!(
        "  {:<width$}  {:<10}  {:<8}  {:<13}  DETAIL\n",
        "NAME", "STATE", "SESSIONS", "PIDS"
    ));
    for v in servers {
        let pids: Vec<String> = v["pids"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p.to_string())
            .collect();
        let pids = if pids.is_empty() {
            "-".to_string()
        } else {
            pids.join(",")
        };
        let state = v["state"].as_str().unwrap_or("?");
        let detail = match (state, v["restart_in_ms"].as_u64(), v["last_error"].as_str()) {
            ("restarting", Some(ms), _) => format!("restarts in {} s", ms.div_ceil(1000)),
            ("installing", ..) => "mcpshare add --source is installing it".into(),
            (_, _, Some(e)) if matches!(state, "failed" | "crashed") => e.to_string(),
            _ => format!(
                "{}, {}",
                v["share"].as_str().unwrap_or("?"),
                if v["lazy"] == json!(false) {
                    "eager"
                } else {
                    "lazy"
                }
            ),
        };
        s.push_str(&format!(
            "  {:<width$}  {state:<10}  {:<8}  {pids:<13}  {detail}\n",
            v["name"].as_str().unwrap_or("?"),
            v["sessions"].as_u64().unwrap_or(0),
        ));
    }
    s
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
}
