//! The `foreign_orphans` check: MCP servers of this user, not mcpshare's
//! own (those are `orphaned_upstreams`), left running after their client
//! is gone, with the commands that list and stop them. Signals nothing.

use super::checks::{Check, Level, check as finding};
use crate::state::home::Home;

pub fn check(home: &Home, exe: &str) -> Check {
    let scope = crate::orphans::Scope {
        mcpshare_home: Some(home.clone()),
        ..crate::orphans::Scope::from_env()
    };
    let found = match crate::orphans::scan(&scope) {
        Ok(found) => found,
        Err(e) => {
            return finding(
                "foreign_orphans",
                Level::Info,
                format!("cannot look for orphaned MCP servers here: {e}"),
                None,
            );
        }
    };
    if found.is_empty() {
        return finding(
            "foreign_orphans",
            Level::Ok,
            "no MCP server of this user outlived its client",
            None,
        );
    }
    let pids: Vec<String> = found.iter().map(|o| o.pid.to_string()).collect();
    let bytes: u64 = found.iter().map(|o| o.rss_bytes).sum();
    finding(
        "foreign_orphans",
        Level::Warning,
        format!(
            "{} MCP server(s) outlived their client and use {}: pid {} (list them with '{exe} orphans')",
            found.len(),
            crate::orphans::mib(bytes),
            pids.join(", ")
        ),
        Some(format!("{exe} orphans --stop {}", pids.join(" "))),
    )
}
