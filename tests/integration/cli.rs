//! The command line and its documentation stay in step.

use crate::common::*;
use serde_json::json;

fn man() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/mcpshare.1")).unwrap()
}

#[test]
fn every_command_option_and_variable_is_in_the_man_page() {
    let man = man();
    for c in mcpshare::cli::COMMANDS {
        assert!(
            man.contains(&format!(".SS {}", c.name)) || man.contains(&format!(".SS \"{}", c.name)),
            "man lacks command {}",
            c.name
        );
        for (flag, _) in c.options {
            assert!(
                man.contains(&flag.replace('-', "\\-")),
                "man lacks option {flag} of {}",
                c.name
            );
        }
    }
    for check in mcpshare::doctor::CHECKS {
        assert!(
            man.contains(&format!(".B {check}\n")),
            "man lacks doctor check {check}"
        );
    }
    for f in mcpshare::doctor::PROCESS_FIELDS {
        assert!(
            man.contains(&format!(".B {f}\n")),
            "man lacks doctor processes field {f}"
        );
    }
    for var in mcpshare::cli::ENVIRONMENT {
        assert!(man.contains(var), "man lacks environment variable {var}");
    }
    for section in [
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
        assert!(
            man.contains(&format!(".SH {section}")) || man.contains(&format!(".SH \"{section}\"")),
            "man lacks {section}"
        );
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
