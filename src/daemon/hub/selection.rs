//! Which servers a hub session sees: all enabled ones, a profile's (the
//! config file's `profiles`), a list, minus exclusions; and the name
//! budget and page size. A selection is its URL
//! (`/mcp/p/P?servers=…&exclude=…&budget=N&page_size=M`),
//! which is also what `mcpshare mcp` is told to attach to.

use super::names;
use crate::config::{Config, ToolFilter};
use crate::mcp::jsonrpc;
use serde_json::{Value, json};

/// Which servers a hub session sees.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    /// A profile of the config file (`/mcp/p/NAME`).
    pub profile: Option<String>,
    /// Only these servers (`?servers=a,b`).
    pub servers: Option<Vec<String>>,
    /// Not these (`?exclude=c`).
    pub exclude: Vec<String>,
    /// The tool name budget (`?budget=N`).
    pub budget: usize,
    /// Items per page of a list (`?page_size=N`); 0, the default: every
    /// item in one page.
    pub page_size: usize,
}

/// The largest page size accepted.
pub const MAX_PAGE_SIZE: usize = 10_000;

impl Selection {
    /// The selection of a hub URL: its path and query.
    pub fn from_url(url: &str) -> Result<Selection, String> {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let profile = match path {
            "/mcp" | "/mcp/" => None,
            p => match p
                .strip_prefix("/mcp/p/")
                .filter(|n| !n.is_empty() && !n.contains('/'))
            {
                Some(name) => Some(name.to_string()),
                None => return Err(format!("no hub endpoint {p}: use /mcp or /mcp/p/PROFILE")),
            },
        };
        let mut sel = Selection {
            profile,
            budget: names::DEFAULT_BUDGET,
            ..Selection::default()
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let list = || {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            };
            match k {
                "servers" => sel.servers = Some(list()),
                "exclude" => sel.exclude = list(),
                "budget" => {
                    sel.budget = v
                        .parse()
                        .ok()
                        .filter(|n| *n >= names::MIN_BUDGET && *n <= 256)
                        .ok_or_else(|| {
                            format!(
                                "bad budget {v:?}: a whole number from {} to 256",
                                names::MIN_BUDGET
                            )
                        })?
                }
                "page_size" => {
                    sel.page_size = v
                        .parse()
                        .ok()
                        .filter(|n| *n <= MAX_PAGE_SIZE)
                        .ok_or_else(|| {
                            format!(
                                "bad page size {v:?}: a whole number up to {MAX_PAGE_SIZE} (0: one page)"
                            )
                        })?
                }
                other => return Err(format!("unknown hub parameter {other:?}")),
            }
        }
        Ok(sel)
    }

    /// The URL of this selection (what `from_url` reads back).
    pub fn to_url(&self) -> String {
        let mut url = match &self.profile {
            Some(p) => format!("/mcp/p/{p}"),
            None => "/mcp".to_string(),
        };
        let mut query = Vec::new();
        if let Some(s) = &self.servers {
            query.push(format!("servers={}", s.join(",")));
        }
        if !self.exclude.is_empty() {
            query.push(format!("exclude={}", self.exclude.join(",")));
        }
        if self.budget != names::DEFAULT_BUDGET && self.budget != 0 {
            query.push(format!("budget={}", self.budget));
        }
        if self.page_size != 0 {
            query.push(format!("page_size={}", self.page_size));
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        url
    }

    /// The enabled servers this selection sees, and the profile's filter
    /// on qualified tool names (`server__tool`).
    pub fn choose(
        &self,
        config: &Config,
        profiles: &Value,
    ) -> Result<(Vec<String>, ToolFilter), String> {
        let mut filter = ToolFilter::default();
        let mut wanted: Option<Vec<String>> = self.servers.clone();
        if let Some(p) = &self.profile {
            let Some(profile) = profiles.get(p) else {
                return Err(format!("no profile '{p}' in the config's \"profiles\""));
            };
            let strings = |v: &Value| jsonrpc::strings(v);
            if let Some(s) = profile.get("servers") {
                let listed = strings(s);
                wanted = Some(match wanted {
                    Some(w) => w.into_iter().filter(|n| listed.contains(n)).collect(),
                    None => listed,
                });
            }
            if let Some(t) = profile.get("tools") {
                filter.allow = t.get("allow").map(strings);
                filter.deny = t.get("deny").map(strings).unwrap_or_default();
            }
        }
        if let Some(w) = &wanted
            && let Some(unknown) = w.iter().find(|n| config.get(n).is_none())
        {
            return Err(format!("no server '{unknown}' in the config"));
        }
        let chosen = config
            .servers
            .iter()
            .filter(|s| s.enabled)
            .filter(|s| wanted.as_ref().is_none_or(|w| w.contains(&s.name)))
            .filter(|s| !self.exclude.contains(&s.name))
            .map(|s| s.name.clone())
            .collect();
        Ok((chosen, filter))
    }
}

/// The `profiles` object of the config file (kept there beside
/// `mcpServers`), or null.
pub(super) fn profiles(path: &std::path::Path) -> Value {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.get("profiles").cloned())
        .unwrap_or(Value::Null)
}

/// The path a bridge for `mcpshare mcp` talks to (answer to its
/// registration `{"hub": {...}}`).
pub fn registration(body: &Value) -> Result<Value, String> {
    let h = &body["hub"];
    let list = |k: &str| jsonrpc::strings(&h[k]);
    let selection = Selection {
        profile: h["profile"].as_str().map(String::from),
        servers: h
            .get("servers")
            .filter(|v| v.is_array())
            .map(|_| list("servers")),
        exclude: list("exclude"),
        budget: h["budget"]
            .as_u64()
            .map_or(names::DEFAULT_BUDGET, |b| b as usize),
        page_size: h["page_size"].as_u64().map_or(0, |n| n as usize),
    };
    // Round-trip through the URL, so its checks apply here too.
    let url = selection.to_url();
    Selection::from_url(&url)?;
    Ok(json!({"id": "hub", "path": url}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_read_back_from_their_url() {
        let s =
            Selection::from_url("/mcp/p/work?servers=a,b&exclude=c&budget=40&page_size=5").unwrap();
        assert_eq!(s.profile.as_deref(), Some("work"));
        assert_eq!(s.servers, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(s.exclude, ["c"]);
        assert_eq!(s.budget, 40);
        assert_eq!(s.page_size, 5);
        assert_eq!(Selection::from_url(&s.to_url()).unwrap(), s);
        assert_eq!(Selection::from_url("/mcp").unwrap().to_url(), "/mcp");
        assert!(Selection::from_url("/mcp/x").is_err());
        assert!(Selection::from_url("/mcp?budget=3").is_err());
        assert!(Selection::from_url("/mcp?page_size=-1").is_err());
        assert!(Selection::from_url("/mcp?page_size=10001").is_err());
        assert_eq!(
            Selection::from_url("/mcp?page_size=0").unwrap().to_url(),
            "/mcp"
        );
        assert!(Selection::from_url("/mcp?what=1").is_err());
    }

    #[test]
    fn a_selection_chooses_enabled_servers_of_its_profile() {
        let text = r#"{"mcpServers": {
            "a": {"command": "sh"}, "b": {"command": "sh"},
            "c": {"command": "sh", "mcpshare": {"enabled": false}}}}"#;
        let config = crate::config::parse(std::path::Path::new("/c.json"), text).unwrap();
        let profiles = json!({"p": {"servers": ["b", "c"], "tools": {"deny": ["b__x"]}}});
        let all = Selection::from_url("/mcp").unwrap();
        assert_eq!(all.choose(&config, &profiles).unwrap().0, ["a", "b"]);
        let (chosen, filter) = Selection::from_url("/mcp/p/p")
            .unwrap()
            .choose(&config, &profiles)
            .unwrap();
        assert_eq!(chosen, ["b"]);
        assert!(!filter.admits("b__x") && filter.admits("b__y"));
        let ex = Selection::from_url("/mcp?exclude=a").unwrap();
        assert_eq!(ex.choose(&config, &profiles).unwrap().0, ["b"]);
        assert!(
            Selection::from_url("/mcp/p/none")
                .unwrap()
                .choose(&config, &profiles)
                .is_err()
        );
        assert!(
            Selection::from_url("/mcp?servers=zz")
                .unwrap()
                .choose(&config, &profiles)
                .is_err()
        );
    }
}
