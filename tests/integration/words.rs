//! What a new user meets: every command's own help, messages that say what
//! happened and what to do, and what status, logs and doctor show.

use crate::common::*;
use serde_json::json;
use std::time::Duration;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `CMD --help`, `CMD -h` and `help CMD` print that command's usage
/// (its synopsis and every option) on stdout and exit 0.
#[test]
fn every_command_prints_its_own_usage() {
    let home = TestHome::new("cmdhelp");
    for c in mcpshare::cli::COMMANDS {
        let words: Vec<&str> = c.name.split(' ').collect();
        let ways: [Vec<&str>; 3] = [
            [&words[..], &["--help"]].concat(),
            [&words[..], &["-h"]].concat(),
            [&["help"], &words[..]].concat(),
        ];
        for args in ways {
            let out = home.mcpshare(&args);
            let stdout = text(&out.stdout);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{args:?}: {}",
                text(&out.stderr)
            );
            assert!(stdout.contains(c.synopsis), "{args:?}:\n{stdout}");
            for (flag, _) in c.options {
                assert!(stdout.contains(flag), "{args:?} lacks {flag}:\n{stdout}");
            }
        }
    }
    // After `--`, --help is the server's.
    let out = home.mcpshare(&["run", "--help"]);
    assert!(text(&out.stdout).starts_with("Usage: mcpshare run"));
    for args in [&["-h"][..], &["help"], &["-V"]] {
        let out = home.mcpshare(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
    }
    let help = text(&home.mcpshare(&["--help"]).stdout);
    for documented in ["-h", "-V", "help [COMMAND]"] {
        assert!(
            help.contains(documented),
            "help lacks {documented}:\n{help}"
        );
    }
}

/// A stray word after --version is refused; `run` without a command
/// prints run's usage; each stderr line is whole (ends with a newline).
#[test]
fn usage_errors_say_what_to_type() {
    let home = TestHome::new("usagewords");
    for args in [&["--version", "extra"][..], &["help", "frobnicate"]] {
        let out = home.mcpshare(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stdout)
        );
    }
    let out = home.mcpshare(&["run"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.starts_with("mcpshare: "), "{err}");
    assert!(
        err.contains("Usage: mcpshare run") && err.contains("--isolated"),
        "{err}"
    );
    for args in [&["run"][..], &["status", "--bogus"], &["logs"]] {
        let err = text(&home.mcpshare(args).stderr);
        assert!(err.ends_with('\n'), "{args:?}: {err:?}");
        assert!(err.contains("hint: "), "{args:?}: {err:?}");
    }
}
