//! What the hub says of itself at `initialize`: the union of its servers'
//! capabilities, their instructions under one heading each. Rules only.

use serde_json::{Map, Value, json};

/// The union of the servers' capabilities (each `initialize` result's).
/// List changes are announced by the hub for every list it serves.
pub fn capabilities(inits: &[(String, Value)]) -> Value {
    let mut caps = Map::new();
    for (_, init) in inits {
        let Some(theirs) = init.get("capabilities").and_then(Value::as_object) else {
            continue;
        };
        for (k, v) in theirs {
            // Task ids are not isolated per session; not offered (as on
            // the per-upstream endpoint).
            if k == "tasks" {
                continue;
            }
            let entry = caps.entry(k.clone()).or_insert_with(|| json!({}));
            if let (Some(into), Some(from)) = (entry.as_object_mut(), v.as_object()) {
                for (fk, fv) in from {
                    // A feature is on when any server has it on.
                    let on = fv.as_bool() == Some(true);
                    match into.get(fk) {
                        Some(Value::Bool(true)) => {}
                        _ if on => {
                            into.insert(fk.clone(), json!(true));
                        }
                        None => {
                            into.insert(fk.clone(), fv.clone());
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    for list in ["tools", "prompts", "resources"] {
        if let Some(obj) = caps.get_mut(list).and_then(Value::as_object_mut) {
            obj.insert("listChanged".into(), json!(true));
        }
    }
    // The hub lists tools even before any server says it has some: a lazy
    // or crashed server's tools come and go with list_changed.
    caps.entry("tools")
        .or_insert_with(|| json!({"listChanged": true}));
    Value::Object(caps)
}

/// Every server's instructions, each under a heading with its name; and a
/// line for each server that is not available.
pub fn instructions(inits: &[(String, Value)], unavailable: &[(String, String)]) -> Option<String> {
    let mut parts = Vec::new();
    for (server, init) in inits {
        if let Some(text) = init
            .get("instructions")
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
        {
            parts.push(format!(
                "## {server}\n(its tools and prompts are named {server}__NAME)\n\n{}",
                text.trim()
            ));
        }
    }
    for (server, why) in unavailable {
        parts.push(format!("## {server}\nNot available: {why}"));
    }
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_the_union_and_announce_list_changes() {
        let inits = vec![
            (
                "a".to_string(),
                json!({"capabilities": {"tools": {}, "logging": {}, "tasks": {"x": {}}}}),
            ),
            (
                "b".to_string(),
                json!({"capabilities": {"resources": {"subscribe": true}, "prompts": {"listChanged": false}}}),
            ),
            (
                "c".to_string(),
                json!({"capabilities": {"resources": {"subscribe": false}}}),
            ),
        ];
        let caps = capabilities(&inits);
        assert_eq!(caps["tools"], json!({"listChanged": true}));
        assert_eq!(caps["logging"], json!({}));
        assert_eq!(caps["resources"]["subscribe"], json!(true));
        assert_eq!(caps["prompts"]["listChanged"], json!(true));
        assert!(caps.get("tasks").is_none());
        assert_eq!(capabilities(&[])["tools"], json!({"listChanged": true}));
    }

    #[test]
    fn instructions_keep_each_server_under_its_name() {
        let inits = vec![
            ("a".to_string(), json!({"instructions": "Use a well."})),
            ("b".to_string(), json!({})),
        ];
        let text = instructions(&inits, &[("c".into(), "command not found".into())]).unwrap();
        assert!(text.starts_with("## a\n"), "{text}");
        assert!(
            text.contains("Use a well.") && text.contains("## c\nNot available: command not found")
        );
        assert_eq!(instructions(&inits[1..], &[]), None);
    }
}
