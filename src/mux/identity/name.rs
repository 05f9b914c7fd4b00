//! An upstream's readable name, from what identifies the server: the
//! package a runner fetches, the package directory under `node_modules`,
//! the script's name. Decided by the command and arguments alone, never by
//! the working directory or the environment (a global id must not depend on
//! which session came first).

use super::Spec;

impl Spec {
    /// A short readable name for what identifies the server: the package
    /// an `npx`, `uvx` or similar runner fetches, the package directory of a
    /// script under `node_modules`, else the script's (or command's) name,
    /// a generic one (`index.js`, `main.py`) by its directory. Only the
    /// command and arguments decide it, never the working directory.
    pub fn name(&self) -> String {
        let runner = file_name(&self.command).trim_end_matches(".exe");
        let mut args = self.args.iter().map(String::as_str);
        let name = match runner {
            "npx" | "bunx" | "pnpx" | "uvx" | "pipx" => package(runner, args),
            "npm" | "pnpm" | "yarn" => {
                let sub = positionals(runner, &mut args).next();
                matches!(sub, Some("exec" | "dlx" | "x"))
                    .then(|| package(runner, args))
                    .flatten()
            }
            "node" | "bun" | "deno" | "tsx" | "ts-node" | "uv" | "docker" | "podman" => {
                script(runner, args)
            }
            r if r.starts_with("python") => script("python", args),
            _ => None,
        };
        let clean: String = name
            .unwrap_or_else(|| script_name(&self.command))
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        if clean.is_empty() {
            "upstream".into()
        } else {
            clean
        }
    }
}

/// Options of each runner that take the next argument as their value.
fn takes_value(runner: &str, flag: &str) -> bool {
    let flags: &[&str] = match runner {
        "npx" | "bunx" | "pnpx" | "npm" | "pnpm" | "yarn" => &[
            "-p",
            "--package",
            "-c",
            "--call",
            "--registry",
            "--cache",
            "--userconfig",
            "--prefix",
            "-w",
            "--workspace",
            "-C",
            "--dir",
        ],
        "uvx" | "uv" => &[
            "--from",
            "--with",
            "--with-editable",
            "--with-requirements",
            "-p",
            "--python",
            "--directory",
            "--project",
            "--index",
            "--index-url",
            "--default-index",
            "--extra-index-url",
            "--env-file",
            "--extra",
            "--group",
            "--package",
        ],
        "pipx" => &["--spec", "--python", "--index-url", "--pip-args"],
        "node" | "bun" | "tsx" | "ts-node" => &[
            "-r",
            "--require",
            "--import",
            "--loader",
            "--experimental-loader",
            "--env-file",
            "--conditions",
            "-C",
            "--cwd",
            "--tsconfig",
        ],
        "deno" => &["-c", "--config", "--import-map", "--env-file", "--location"],
        "python" => &["-m", "-W", "-X", "-Q"],
        "docker" | "podman" => &[
            "-e",
            "--env",
            "--env-file",
            "-v",
            "--volume",
            "--mount",
            "--name",
            "--network",
            "--net",
            "-p",
            "--publish",
            "-w",
            "--workdir",
            "-u",
            "--user",
            "-l",
            "--label",
            "--entrypoint",
            "--platform",
            "--add-host",
            "--pull",
            "--cpus",
            "-m",
            "--memory",
            "-h",
            "--hostname",
            "--device",
            "--cap-add",
            "--cap-drop",
            "--security-opt",
            "--tmpfs",
        ],
        _ => &[],
    };
    flags.contains(&flag)
}

/// The positional arguments, in order, skipping options and their values.
fn positionals<'a: 'b, 'b, I: Iterator<Item = &'a str>>(
    runner: &'b str,
    args: &'b mut I,
) -> impl Iterator<Item = &'a str> + 'b {
    std::iter::from_fn(move || {
        while let Some(a) = args.next() {
            if a == "--" {
                continue;
            }
            if a.starts_with('-') && a.len() > 1 {
                if !a.contains('=') && takes_value(runner, a) {
                    args.next();
                }
                continue;
            }
            return Some(a);
        }
        None
    })
}

/// The value of `flag` (as `flag V` or `flag=V`) among `args`.
fn option<'a>(args: &[&'a str], flags: &[&str]) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(i, a)| {
        flags.iter().find_map(|f| {
            if a == f {
                args.get(i + 1).copied()
            } else {
                a.strip_prefix(f).and_then(|r| r.strip_prefix('='))
            }
        })
    })
}

/// The package a runner fetches: its `--package`/`--from`/`--spec` value,
/// else its first positional argument, by name without version or scope.
fn package<'a>(runner: &str, args: impl Iterator<Item = &'a str>) -> Option<String> {
    let args: Vec<&str> = args.collect();
    let named = option(&args, &["-p", "--package", "--from", "--spec"])
        .filter(|_| runner != "pipx" || args.contains(&"--spec"));
    let mut rest = args.iter().copied();
    let mut pos = positionals(runner, &mut rest);
    let first = match (runner, pos.next()) {
        ("pipx", Some("run")) => pos.next(),
        (_, first) => first,
    };
    named.or(first).map(package_name)
}

/// `@scope/name@1.2`, `name==1.2`, `name[extra]`, `git+https://host/o/name.git`,
/// `registry/image:tag`: the bare name.
fn package_name(spec: &str) -> String {
    let last = spec
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(spec);
    let last = last.strip_suffix(".git").unwrap_or(last);
    let end = last
        .char_indices()
        .find(|(i, c)| "=<>~![;:@ ".contains(*c) && *i > 0)
        .map_or(last.len(), |(i, _)| i);
    last[..end].to_string()
}

/// What an interpreter runs: the module of `python -m`, the image of
/// `docker run`, else the script, named by [`script_name`].
fn script<'a>(runner: &str, args: impl Iterator<Item = &'a str>) -> Option<String> {
    let args: Vec<&str> = args.collect();
    if runner == "python"
        && let Some(module) = option(&args, &["-m"])
    {
        return Some(module.to_string());
    }
    let mut rest = args.iter().copied();
    let mut pos = positionals(runner, &mut rest).peekable();
    if matches!(runner, "bun" | "deno" | "uv" | "docker" | "podman")
        && pos.peek().is_some_and(|a| *a == "run")
    {
        pos.next();
    }
    let target = pos.next()?;
    if matches!(runner, "docker" | "podman") {
        return Some(package_name(target));
    }
    match option(&args, &["--directory", "--project"]) {
        Some(dir) if runner == "uv" && !target.contains('/') => {
            Some(script_name(&format!("{dir}/{target}")))
        }
        _ => Some(script_name(target)),
    }
}

/// A script or program by name: the package directory under
/// `node_modules` if it is in one, else its file name without extension,
/// or for a generic one (`index.js`, `main.py`) the nearest directory that
/// is not a build directory.
fn script_name(path: &str) -> String {
    const GENERIC: &[&str] = &[
        "index", "main", "server", "cli", "app", "__main__", "mod", "run", "start",
    ];
    const BUILD_DIRS: &[&str] = &[
        "dist", "build", "lib", "src", "bin", "out", "target", "release", "debug", "scripts", ".",
        "..", "",
    ];
    let parts: Vec<&str> = path.split(['/', '\\']).collect();
    if let Some(at) = parts.iter().rposition(|p| *p == "node_modules") {
        let pkg = match parts.get(at + 1) {
            Some(scope) if scope.starts_with('@') => parts.get(at + 2),
            other => other,
        };
        if let Some(pkg) = pkg.filter(|p| **p != ".bin" && at + 2 < parts.len()) {
            return pkg.to_string();
        }
    }
    let file = parts.last().copied().unwrap_or(path);
    let stem = match file.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => file,
    };
    if GENERIC.contains(&stem)
        && let Some(dir) = parts[..parts.len() - 1]
            .iter()
            .rev()
            .find(|d| !BUILD_DIRS.contains(d))
    {
        return dir.to_string();
    }
    stem.to_string()
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_readable() {
        let spec = || Spec {
            command: "npx".into(),
            args: vec!["-y".into(), "@modelcontextprotocol/server-memory".into()],
            cwd: "/home/u/project".into(),
            env: Default::default(),
            global: false,
            isolated: false,
            server: None,
            secret_args: false,
        };
        assert!(spec().id().starts_with("server-memory-"));
        let name = |command: &str, args: &[&str]| {
            Spec {
                command: command.into(),
                args: args.iter().map(|a| a.to_string()).collect(),
                ..spec()
            }
            .name()
        };
        let cases: &[(&str, &[&str], &str)] = &[
            ("/usr/local/bin/fixture", &[], "fixture"),
            // The package of a package runner, without its version.
            (
                "npx",
                &["-y", "@modelcontextprotocol/server-memory@2025.8.4"],
                "server-memory",
            ),
            (
                "npx",
                &["-y", "--package", "@acme/tools@1", "acme-notes"],
                "tools",
            ),
            (
                "npx",
                &[
                    "--registry",
                    "https://r.example",
                    "mcp-remote@latest",
                    "https://x",
                ],
                "mcp-remote",
            ),
            ("/usr/bin/bunx", &["@upstash/context7-mcp"], "context7-mcp"),
            ("pnpm", &["dlx", "@playwright/mcp@0.0.41"], "mcp"),
            ("uvx", &["mcp-server-fetch==2025.4.7"], "mcp-server-fetch"),
            (
                "uvx",
                &["--from", "dbt-mcp==1.12.0", "dbt-mcp", "serve"],
                "dbt-mcp",
            ),
            (
                "uvx",
                &[
                    "--python",
                    "3.12",
                    "--from",
                    "git+https://github.com/o/serena.git",
                    "serena",
                ],
                "serena",
            ),
            (
                "pipx",
                &["run", "--spec", "mcp-server-time[cli]", "mcp-server-time"],
                "mcp-server-time",
            ),
            // The package directory of a script under node_modules.
            (
                "node",
                &["/home/u/lib/node_modules/@modelcontextprotocol/server-memory/dist/index.js"],
                "server-memory",
            ),
            (
                "node",
                &["--import", "tsx", "node_modules/github-mcp/build/index.js"],
                "github-mcp",
            ),
            (
                "/home/u/app/node_modules/.bin/mcp-server-git",
                &[],
                "mcp-server-git",
            ),
            // The script's name otherwise; a generic one by its directory.
            (
                "node",
                &["/home/u/src/weather-server/dist/index.js"],
                "weather-server",
            ),
            ("node", &["build/main.mjs"], "main"),
            ("python3", &["-u", "/srv/notes_server.py"], "notes_server"),
            (
                "python",
                &["-m", "mcp_server_git", "--repository", "."],
                "mcp_server_git",
            ),
            (
                "uv",
                &["run", "--directory", "/home/u/weather", "main.py"],
                "weather",
            ),
            (
                "deno",
                &[
                    "run",
                    "--allow-net",
                    "https://deno.land/x/weather_mcp/mod.ts",
                ],
                "weather_mcp",
            ),
            (
                "docker",
                &[
                    "run",
                    "-i",
                    "--rm",
                    "-e",
                    "GITHUB_TOKEN",
                    "ghcr.io/github/github-mcp-server:v1",
                ],
                "github-mcp-server",
            ),
            ("npx", &[], "npx"),
        ];
        for (command, args, want) in cases {
            assert_eq!(&name(command, args), want, "{command} {args:?}");
        }
    }
}
