//! `mcpshare doctor` and `doctor processes`: findings about the home, the
//! daemon and every recorded process, each with the exact command that
//! fixes it, printed. It only reads: it never signals a process and never
//! writes or deletes a file; the CLI acts (`stop --force`, `doctor
//! processes --cleanup-stale-records`, `orphans --stop`). Its one look at
//! other processes' command lines is `foreign_orphans`, through `orphans`.

mod checks;
mod foreign_orphans;
mod processes;

pub use checks::{CHECKS, Check, Level, checks, summary};
pub use processes::{
    PROCESS_FIELDS, Seen, inspect, is_stale_client, processes, render_line, seen, warn_corrupt,
};

/// A value that may be unknown, as a line shows it: `-` when it is.
fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

/// Pids joined by `sep`.
fn pid_list(pids: &[u32], sep: &str) -> String {
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// This binary's path, as the fixes name it.
fn this_exe() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "mcpshare".into())
}
