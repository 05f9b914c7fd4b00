//! The one table of commands and options, and the environment variables
//! mcpshare reads: it feeds `--help`, each command's usage and the tests
//! that keep mcpshare(1) in step with the parser.

pub struct CommandDoc {
    pub name: &'static str,
    pub synopsis: &'static str,
    pub about: &'static str,
    pub options: &'static [(&'static str, &'static str)],
}

pub const COMMANDS: &[CommandDoc] = &[
    CommandDoc {
        name: "run",
        synopsis: "mcpshare run [--isolated] [--global] -- COMMAND [ARGS...] | mcpshare run [--isolated] NAME",
        about: "Speak MCP on stdio, sharing one upstream COMMAND (or configured server NAME) with every client of the same identity",
        options: &[
            ("--isolated", "give this client an upstream of its own"),
            ("--global", "share across working directories"),
        ],
    },
    CommandDoc {
        name: "mcp",
        synopsis: "mcpshare mcp [--profile P] [--servers A,B] [--exclude C] [--name-budget N] [--page-size N]",
        about: "Speak MCP on stdio to the hub: one server over every configured, enabled server",
        options: &[
            (
                "--profile",
                "only profile P's servers and tools (config \"profiles\")",
            ),
            ("--servers", "only these servers (comma-separated)"),
            ("--exclude", "not these servers (comma-separated)"),
            (
                "--name-budget",
                "longest tool name clients see (default 49)",
            ),
            (
                "--page-size",
                "list items per page, with a cursor to the next (default: all in one page)",
            ),
        ],
    },
    CommandDoc {
        name: "daemon",
        synopsis: "mcpshare daemon",
        about: "Run the daemon in the foreground (clients start it on their own)",
        options: &[],
    },
    CommandDoc {
        name: "status",
        synopsis: "mcpshare status [--json]",
        about: "Show the daemon and its upstreams",
        options: &[("--json", "print one JSON object")],
    },
    CommandDoc {
        name: "logs",
        synopsis: "mcpshare logs ID|NAME [-n N] [-f]",
        about: "Show the standard error of upstream ID, or of configured server NAME's upstream",
        options: &[
            ("-n", "show the last N lines (default 100)"),
            ("-f", "follow: keep printing new lines"),
        ],
    },
    CommandDoc {
        name: "restart",
        synopsis: "mcpshare restart ID|NAME",
        about: "Restart upstream ID, or every upstream of configured server NAME (also after a crash)",
        options: &[],
    },
    CommandDoc {
        name: "stop",
        synopsis: "mcpshare stop [--force]",
        about: "Stop the daemon and its upstreams; returns once its lock is free",
        options: &[(
            "--force",
            "signal a hung daemon's pid, after confirming its start time and executable",
        )],
    },
    super::console::DOC,
    CommandDoc {
        name: "doctor",
        synopsis: "mcpshare doctor [--json]",
        about: "Check the home, the daemon and every recorded process; print the fix for each problem",
        options: &[("--json", "print the checks as a JSON array")],
    },
    CommandDoc {
        name: "reload",
        synopsis: "mcpshare reload",
        about: "Make the daemon read its config again: restart only servers whose launch fields changed",
        options: &[],
    },
    CommandDoc {
        name: "tools",
        synopsis: "mcpshare tools NAME [--json]",
        about: "List the tools of configured server NAME (started through the daemon if needed)",
        options: &[("--json", "print the tools as a JSON array")],
    },
    CommandDoc {
        name: "call",
        synopsis: "mcpshare call NAME TOOL [JSON | KEY=VALUE...] [--json]",
        about: "Call TOOL of configured server NAME and print its result; exit 1 if the tool reports an error",
        options: &[("--json", "print the whole result as JSON")],
    },
    CommandDoc {
        name: "doctor processes",
        synopsis: "mcpshare doctor processes [--json] [--cleanup-stale-records]",
        about: "List every registry record with what the OS says of its pid now",
        options: &[
            ("--json", "print a JSON array"),
            (
                "--cleanup-stale-records",
                "remove the records of dead processes (never signals anything)",
            ),
        ],
    },
    CommandDoc {
        name: "add",
        synopsis: "mcpshare add NAME [-e K=V]... [--cwd DIR] [--lazy] [--eager] [--share MODE] [--url URL] [--sse] [--header K:V]... [--source DIR] [--runtime R] [-- COMMAND [ARGS...]]",
        about: "Add server NAME to the config file: a COMMAND, a remote --url, or a project --source",
        options: &[
            (
                "-e",
                "set K=V in the server's environment (V may be ${VAR})",
            ),
            ("--cwd", "run COMMAND in DIR"),
            ("--lazy", "start it at its first use (the default)"),
            ("--eager", "start it with the daemon"),
            ("--share", "shared (default), per-cwd or per-client"),
            ("--url", "a remote Streamable HTTP server at URL"),
            ("--sse", "the remote server speaks the older SSE transport"),
            ("--header", "send header K:V to the remote server"),
            (
                "--source",
                "a node, bun or python project in DIR: detect, install, add",
            ),
            ("--runtime", "node, bun or python, in place of detection"),
        ],
    },
    CommandDoc {
        name: "remove",
        synopsis: "mcpshare remove NAME",
        about: "Remove server NAME from the config file",
        options: &[],
    },
    CommandDoc {
        name: "enable",
        synopsis: "mcpshare enable NAME",
        about: "Enable server NAME in the config file",
        options: &[],
    },
    CommandDoc {
        name: "disable",
        synopsis: "mcpshare disable NAME",
        about: "Disable server NAME in the config file (its entry stays)",
        options: &[],
    },
    CommandDoc {
        name: "list",
        synopsis: "mcpshare list [--json]",
        about: "List the config file's servers (never an env or header value)",
        options: &[("--json", "print one JSON object")],
    },
    CommandDoc {
        name: "edit",
        synopsis: "mcpshare edit",
        about: "Edit the config file in $EDITOR; saved only when valid",
        options: &[],
    },
    CommandDoc {
        name: "orphans",
        synopsis: "mcpshare orphans [--json] [--stop PID[@START]...]",
        about: "List this user's MCP servers left running without their client; end the ones named",
        options: &[
            ("--json", "print a JSON array"),
            (
                "--stop",
                "end the named trees, each judged again first (PID or PID@START)",
            ),
        ],
    },
    CommandDoc {
        name: "clients",
        synopsis: "mcpshare clients [--json]",
        about: "List the MCP clients installed here, their config files and servers, and whether each is connected",
        options: &[("--json", "print a JSON array")],
    },
    CommandDoc {
        name: "import",
        synopsis: "mcpshare import [--from CLIENT|FILE] [--dry-run]",
        about: "Copy the servers of every client (or one, or a file) into mcpshare's config, one entry per server",
        options: &[
            ("--from", "read only this client (or config file)"),
            ("--dry-run", "report, write nothing"),
        ],
    },
    CommandDoc {
        name: "connect",
        synopsis: "mcpshare connect [--mode hub|wrap] [--dry-run] [--all] [CLIENT...]",
        about: "Point clients at mcpshare: show the diff, back the file up, rewrite only mcpshare's entries",
        options: &[
            (
                "--mode",
                "hub: one 'mcpshare mcp' entry in place of the imported servers (default); wrap: each stdio entry through 'mcpshare run --'",
            ),
            ("--dry-run", "show the diff, write nothing"),
            ("--all", "every client whose config file exists"),
        ],
    },
    CommandDoc {
        name: "disconnect",
        synopsis: "mcpshare disconnect [--all] [CLIENT...]",
        about: "Undo connect: restore the backup if the file is as connect left it, else only mcpshare's entries",
        options: &[("--all", "every connected client")],
    },
];

/// Every environment variable mcpshare reads; each is in mcpshare(1).
pub const ENVIRONMENT: &[&str] = &[
    "MCPSHARE_HOME",
    "XDG_STATE_HOME",
    "MCPSHARE_MAX_MESSAGE_BYTES",
    "MCPSHARE_START_TIMEOUT_SECS",
    "MCPSHARE_REQUEST_TIMEOUT_SECS",
    "MCPSHARE_PING_EVERY_MS",
    "MCPSHARE_UPSTREAM_IDLE_MS",
    "MCPSHARE_DAEMON_IDLE_SECS",
    "MCPSHARE_HEAD_TIMEOUT_MS",
    "MCPSHARE_BODY_TIMEOUT_MS",
    "MCPSHARE_WATCHDOG_MS",
    "MCPSHARE_LOG_MAX_BYTES",
    "MCPSHARE_SESSION_IDLE_SECS",
    "MCPSHARE_TEST_REPORTED_VERSION",
    "MCPSHARE_CONFIG",
    "XDG_CONFIG_HOME",
    "EDITOR",
    "VISUAL",
    "HOME",
    "APPDATA",
    "CODEX_HOME",
    "MCPSHARE_REMOTE_HEADERS",
];

pub fn help() -> String {
    let mut s = format!(
        "mcpshare {} - share one set of MCP servers among every MCP client\n\nUsage:\n",
        env!("CARGO_PKG_VERSION")
    );
    for c in COMMANDS {
        s.push_str(&format!("  {}\n      {}\n", c.synopsis, c.about));
        for (flag, what) in c.options {
            s.push_str(&format!("      {flag:<12} {what}\n"));
        }
    }
    s.push_str(
        "  mcpshare help [COMMAND] | --help | -h | --version | -V\n\n\
         Every command also takes --help (or -h) for its own usage.\n\
         See mcpshare(1) for files, environment and exit status.\n",
    );
    s
}

/// The usage of one command (`mcpshare CMD --help`, `mcpshare help CMD`);
/// `help doctor` also shows `doctor processes`.
pub fn command_help(name: &str) -> String {
    let mut s = String::new();
    for c in COMMANDS.iter().filter(|c| {
        c.name == name
            || c.name
                .strip_prefix(name)
                .is_some_and(|r| r.starts_with(' '))
    }) {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(&format!("Usage: {}\n\n{}\n", c.synopsis, c.about));
        s.push_str("\nOptions:\n");
        let options = c
            .options
            .iter()
            .chain([&("-h, --help", "print this usage")]);
        let width = options.clone().map(|o| o.0.len()).max().unwrap_or(0);
        for (flag, what) in options {
            s.push_str(&format!("  {flag:<width$}  {what}\n"));
        }
    }
    s.push_str("\nSee mcpshare(1) for the details.\n");
    s
}
