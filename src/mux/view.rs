//! What the clients of a configured server see of its tools: the allowed
//! ones (its `tools` filter), under their aliases. Rules only: a list
//! result in, a list result out; a called name in, the server's name out.

use crate::config::ToolFilter;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ToolView {
    pub filter: ToolFilter,
    /// The server's tool name → the name clients see.
    pub aliases: BTreeMap<String, String>,
}

/// Why a called tool is not passed on.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not in the server's list as clients see it.
    Hidden(String),
}

impl ToolView {
    /// Nothing to filter or rename: lists and calls pass untouched.
    pub fn is_plain(&self) -> bool {
        self.filter == ToolFilter::default() && self.aliases.is_empty()
    }

    /// A `tools/list` result (its JSON text) as clients see it. A result
    /// that does not parse is passed on as it is.
    pub fn present(&self, result: &str) -> String {
        let Ok(mut v) = serde_json::from_str::<Value>(result) else {
            return result.to_string();
        };
        let Some(tools) = v.get_mut("tools").and_then(Value::as_array_mut) else {
            return result.to_string();
        };
        tools.retain(|t| {
            t.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| self.filter.admits(n))
        });
        for t in tools.iter_mut() {
            let name = t.get("name").and_then(Value::as_str).unwrap_or_default();
            if let Some(alias) = self.aliases.get(name) {
                t["name"] = json!(alias);
            }
        }
        v.to_string()
    }

    /// The server's name of a tool clients call as `called`.
    pub fn resolve(&self, called: &str) -> Result<String, Refused> {
        let original = self
            .aliases
            .iter()
            .find(|(_, alias)| alias.as_str() == called)
            .map(|(orig, _)| orig.clone());
        let name = match original {
            Some(orig) => orig,
            // A renamed tool is only reachable by its alias.
            None if self.aliases.contains_key(called) => {
                return Err(Refused::Hidden(called.to_string()));
            }
            None => called.to_string(),
        };
        if self.filter.admits(&name) {
            Ok(name)
        } else {
            Err(Refused::Hidden(called.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(allow: Option<&[&str]>, deny: &[&str], aliases: &[(&str, &str)]) -> ToolView {
        ToolView {
            filter: ToolFilter {
                allow: allow.map(|a| a.iter().map(|s| s.to_string()).collect()),
                deny: deny.iter().map(|s| s.to_string()).collect(),
            },
            aliases: aliases
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    fn names(result: &str) -> Vec<String> {
        let v: Value = serde_json::from_str(result).unwrap();
        v["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    }

    const LIST: &str =
        r#"{"tools":[{"name":"echo","description":"e"},{"name":"add"},{"name":"rm"}]}"#;

    #[test]
    fn lists_keep_allowed_tools_under_their_aliases() {
        let v = view(Some(&["echo", "rm"]), &["rm"], &[("echo", "say")]);
        assert_eq!(names(&v.present(LIST)), ["say"]);
        let all = view(None, &["add"], &[]);
        assert_eq!(names(&all.present(LIST)), ["echo", "rm"]);
        assert!(view(None, &[], &[]).is_plain());
        assert_eq!(all.present("not json"), "not json");
    }

    #[test]
    fn calls_resolve_aliases_and_refuse_hidden_tools() {
        let v = view(None, &["rm"], &[("echo", "say")]);
        assert_eq!(v.resolve("say"), Ok("echo".into()));
        assert_eq!(v.resolve("add"), Ok("add".into()));
        assert_eq!(v.resolve("rm"), Err(Refused::Hidden("rm".into())));
        assert_eq!(
            v.resolve("echo"),
            Err(Refused::Hidden("echo".into())),
            "a renamed tool is reachable by its alias only"
        );
    }
}
