//! `mcpshare reload`: ask the daemon to apply its config again; with no
//! daemon running, only check the file.

use super::{CONTROL_TIMEOUT, control, live_daemon};
use crate::error::{Error, Result};
use crate::state::home::Home;
use serde_json::Value;

/// `mcpshare reload`: the daemon applies its config again; with no daemon
/// running, the config is only checked (a daemon reads it when it starts).
pub(super) fn reload() -> Result<i32> {
    let path = crate::config::path()?;
    let home = Home::open()?;
    let Some(m) = live_daemon(&home)? else {
        crate::config::load(&path)?;
        println!(
            "no daemon running; {} is valid and is read when one starts",
            path.display()
        );
        return Ok(0);
    };
    let (code, body) = control(&m, "POST", "/api/reload", CONTROL_TIMEOUT)?;
    if code != 200 {
        return Err(Error::Daemon(format!(
            "the daemon keeps its last good config: {}",
            body["error"].as_str().unwrap_or("unknown error")
        )));
    }
    if body["changed"] != serde_json::json!(true) {
        println!("{}: no change", path.display());
        return Ok(0);
    }
    let list = |k: &str| {
        let names: Vec<&str> = body[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    println!(
        "reloaded {}: restarting {}; stopped {}; filters updated for {}",
        path.display(),
        list("restarted"),
        list("stopped"),
        list("updated")
    );
    Ok(0)
}
