//! The command line and its documentation stay in step.

use crate::common::*;
use serde_json::json;

fn man() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/mcpshare.1")).unwrap()
}

/// The text of the man page's section or subsection titled `title`: from
/// its `.SH`/`.SS` line to the next heading of the same or a higher level.
fn section<'a>(man: &'a str, level: &str, title: &str) -> &'a str {
    let heading = |l: &str| {
        l.strip_prefix(level)
            .map(|t| t.trim().trim_matches('"') == title)
            .unwrap_or(false)
    };
    let mut start = None;
    let mut offset = 0;
    for line in man.split_inclusive('\n') {
        let l = line.trim_end();
        match start {
            None if heading(l) => start = Some(offset + line.len()),
            Some(s) if l.starts_with(".SH") || (level == ".SS" && l.starts_with(".SS")) => {
                return &man[s..offset];
            }
            _ => {}
        }
        offset += line.len();
    }
    let s = start.unwrap_or_else(|| panic!("man lacks {level} {title}"));
    &man[s..]
}

/// Whether `text` names `word` in a bold macro line of its own
/// (`.B word`, `.BI word ...`, `.BR word ,`): a documented entry, not a
/// mention inside a synopsis.
fn has_entry(text: &str, word: &str) -> bool {
    text.lines().any(|l| {
        [".B ", ".BI ", ".BR "].iter().any(|m| {
            l.strip_prefix(m)
                .and_then(|rest| rest.strip_prefix(word))
                .is_some_and(|after| after.is_empty() || after.starts_with(' '))
        })
    })
}

#[test]
fn every_command_option_and_variable_is_in_the_man_page() {
    let man = man();
    for c in mcpshare::cli::COMMANDS {
        let text = section(&man, ".SS", c.name);
        for (flag, _) in c.options {
            assert!(
                has_entry(text, &flag.replace('-', "\\-")),
                "man's section on {} lacks option {flag}",
                c.name
            );
        }
    }
    let doctor = section(&man, ".SS", "doctor");
    for check in mcpshare::doctor::CHECKS {
        assert!(
            doctor.contains(&format!(".TP\n.B {check}\n")),
            "man's section on doctor lacks check {check}"
        );
    }
    let processes = section(&man, ".SS", "doctor processes");
    for f in mcpshare::doctor::PROCESS_FIELDS {
        assert!(
            processes.contains(&format!(".TP\n.B {f}\n")),
            "man's section on doctor processes lacks field {f}"
        );
    }
    let environment = section(&man, ".SH", "ENVIRONMENT");
    for var in mcpshare::cli::ENVIRONMENT {
        assert!(
            environment.contains(&format!(".TP\n.B {var}\n")),
            "man's ENVIRONMENT lacks variable {var}"
        );
    }
    for s in mcpshare::state::settings::SETTINGS {
        assert!(
            mcpshare::cli::ENVIRONMENT.contains(&s.var),
            "cli::ENVIRONMENT lacks daemon setting {}",
            s.var
        );
    }
    let daemon = section(&man, ".SS", "daemon");
    for var in mcpshare::election::DAEMON_ENVIRONMENT {
        assert!(
            has_entry(daemon, var),
            "man's section on daemon lacks {var}, which a client passes on to it"
        );
    }
    for title in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "COMMANDS",
        "FILES",
        "ENVIRONMENT",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        section(&man, ".SH", title);
    }
}

#[test]
fn usage_errors_exit_2_with_a_hint() {
    let home = TestHome::new("usage");
    for args in [&["frobnicate"][..], &["run"], &["status", "--bogus"], &[]] {
        let out = home.mcpshare(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("mcpshare: ") && err.contains("hint:"),
            "{err}"
        );
    }
    let out = home.mcpshare(&["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("mcpshare run"));
}

#[test]
fn status_json_has_the_documented_shape() {
    let home = TestHome::new("statusjson");
    assert_eq!(home.status(), json!({"daemon": null, "upstreams": []}));
    let (_b, pid) = home.client();
    let st = home.status();
    let d = &st["daemon"];
    for k in ["pid", "port", "version", "started_at"] {
        assert!(!d[k].is_null(), "daemon.{k} missing: {st}");
    }
    let u = &st["upstreams"][0];
    assert_eq!(u["pid"], json!(pid));
    assert_eq!(u["command"], json!([fixture().display().to_string()]));
    assert_eq!(u["sessions"], json!(1));
    assert_eq!(u["state"], json!("running"));
    assert_eq!(u["restarts"], json!(0));
    assert!(u["cwd"].is_string() && u["id"].is_string());
    let out = home.mcpshare(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(u["id"].as_str().unwrap()) && text.contains("running"),
        "{text}"
    );
}
