//! `mcpshare run`: the server's identity from the command line, the
//! working directory and the environment, then the bridge. It never reads
//! the client's stdin itself; the bridge owns stdio from here on.

use crate::error::{Error, Result};
use crate::mux::identity::Spec;
use crate::state::home::Home;

pub(super) fn run(isolated: bool, global: bool, mut argv: Vec<String>) -> Result<i32> {
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
        server: None,
        secret_args: false,
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
    Ok(crate::bridge::run(home, spec))
}

/// `mcpshare run NAME`: configured server NAME, resolved by the daemon in
/// its config (the same file as ours, or it says so).
pub(super) fn run_server(isolated: bool, name: &str) -> Result<i32> {
    let cwd =
        std::env::current_dir().map_err(|e| Error::io("cannot read the working directory", e))?;
    let config = crate::config::path()?;
    // Not a configured server: a command without arguments, as `run -- NAME`.
    let configured = crate::config::load(&config).map_or(true, |c| c.get(name).is_some());
    if !configured && (crate::config::check_name(name).is_err() || on_path(name)) {
        return run(isolated, false, vec![name.to_string()]);
    }
    let home = Home::open()?;
    Ok(crate::bridge::run_server(
        home,
        name,
        &cwd.display().to_string(),
        isolated,
        &config,
    ))
}

/// Is `name` a command found on PATH (or a path to one)?
fn on_path(name: &str) -> bool {
    let path = std::env::var_os("PATH");
    let cwd = std::env::current_dir().ok();
    crate::config::resolve_command(name, cwd.as_deref(), path.as_deref()).is_some()
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
