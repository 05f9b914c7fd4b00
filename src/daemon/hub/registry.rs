//! The names the hub gave, remembered under the home
//! (`catalog/_names.json`; `_` is in no server name, so no server's
//! catalog file) so that a name once given stays: across hub sessions,
//! profiles and restarts, and when another tool comes whose name would
//! take it. One set per list (tools, prompts) and budget, read once at
//! start and written temp + rename only when it changes.
//!
//! Bounded: a server that leaves the config takes its names along, and a
//! server keeps at most [`MAX_PER_SERVER`] names per list and budget; past
//! that, the names of its tools no longer listed are forgotten.

use super::names::{self, Given, Names};
use crate::config::Config;
use crate::pool::lock;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file, in the catalog directory.
const FILE: &str = "_names.json";
/// Names kept per server, list and budget.
const MAX_PER_SERVER: usize = 1000;

/// The file's form: list → budget → server → name → exposed name.
type File = BTreeMap<String, BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>>;

pub struct Registry {
    path: PathBuf,
    /// By (list, budget).
    given: Mutex<BTreeMap<(String, usize), Given>>,
}

impl Registry {
    /// Read the file in catalog directory `dir`; names of servers
    /// `config` does not hold are dropped (none when the config could not
    /// be read). A file that cannot be read or parsed is ignored, once
    /// logged: names are made afresh.
    pub fn load(dir: &Path, config: Option<&Config>) -> Registry {
        let path = dir.join(FILE);
        let given = match std::fs::read(&path) {
            Ok(bytes) => parse(&bytes).unwrap_or_else(|e| {
                crate::log!("{}: {e}; hub names are made afresh", path.display());
                BTreeMap::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                crate::log!(
                    "cannot read {}: {e}; hub names are made afresh",
                    path.display()
                );
                BTreeMap::new()
            }
        };
        let registry = Registry {
            path,
            given: Mutex::new(given),
        };
        if let Some(config) = config {
            registry.keep(config);
        }
        registry
    }

    /// Names for `pairs` of list `list` (`tools`, `prompts`) within
    /// `budget`, keeping those given before ([`Names::assign`]); the new
    /// ones are remembered.
    pub fn assign(&self, list: &str, pairs: &[(String, String)], budget: usize) -> Names {
        let mut all = lock(&self.given);
        let key = (list.to_string(), budget.max(names::MIN_BUDGET));
        let given = all.entry(key).or_default();
        let assigned = Names::assign(pairs, budget, given);
        let mut changed = false;
        for (pair, exposed) in assigned.iter() {
            if given.get(pair).map(String::as_str) != Some(exposed) {
                given.insert(pair.clone(), exposed.to_string());
                changed = true;
            }
        }
        let servers: BTreeSet<&str> = pairs.iter().map(|(s, _)| s.as_str()).collect();
        for server in servers {
            if given.keys().filter(|(s, _)| s == server).count() > MAX_PER_SERVER {
                let before = given.len();
                given.retain(|(s, n), _| s != server || assigned.exposed(s, n).is_some());
                changed |= given.len() != before;
            }
        }
        if changed {
            self.save(&all);
        }
        assigned
    }

    /// Forget the names of servers that `config` does not hold.
    pub fn keep(&self, config: &Config) {
        let mut all = lock(&self.given);
        let before: usize = all.values().map(Given::len).sum();
        for set in all.values_mut() {
            set.retain(|(server, _), _| config.get(server).is_some());
        }
        if all.values().map(Given::len).sum::<usize>() != before {
            self.save(&all);
        }
    }

    fn save(&self, all: &BTreeMap<(String, usize), Given>) {
        let mut file = File::new();
        for ((list, budget), set) in all {
            for ((server, name), exposed) in set {
                file.entry(list.clone())
                    .or_default()
                    .entry(budget.to_string())
                    .or_default()
                    .entry(server.clone())
                    .or_default()
                    .insert(name.clone(), exposed.clone());
            }
        }
        let text = serde_json::to_string(&file).unwrap_or_default();
        let written = match self.path.parent() {
            Some(dir) => std::fs::create_dir_all(dir),
            None => Ok(()),
        }
        .and_then(|()| crate::state::home::write_atomic(&self.path, text.as_bytes()));
        if let Err(e) = written {
            crate::log!(
                "cannot keep the hub's names in {}: {e}",
                self.path.display()
            );
        }
    }
}

/// The file's sets, or what is wrong with it.
fn parse(bytes: &[u8]) -> Result<BTreeMap<(String, usize), Given>, String> {
    let file: File = serde_json::from_slice(bytes).map_err(|e| format!("unreadable ({e})"))?;
    let mut all = BTreeMap::new();
    for (list, budgets) in file {
        for (budget, servers) in budgets {
            let budget: usize = budget
                .parse()
                .map_err(|_| format!("bad budget {budget:?}"))?;
            let set: &mut Given = all.entry((list.clone(), budget)).or_default();
            for (server, tools) in servers {
                for (name, exposed) in tools {
                    set.insert((server.clone(), name), exposed);
                }
            }
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::super::names::tests::pairs;
    use super::*;

    #[test]
    fn names_are_kept_in_the_file_per_list_and_budget() {
        let dir = std::env::temp_dir().join(format!("mcpshare-names-{}", std::process::id()));
        let path = dir.join(FILE);
        let long = "z".repeat(60);
        let r = Registry::load(&dir, None);
        let first = r.assign("tools", &pairs(&[("s", &long)]), 24);
        let name = first.exposed("s", &long).unwrap().to_string();
        r.assign("prompts", &pairs(&[("t", "p")]), 256);
        // Read again: the same name, though a newcomer now wants it.
        let plain = names::split(&name).unwrap().1.to_string();
        let again = Registry::load(&dir, None);
        let both = again.assign("tools", &pairs(&[("s", &long), ("s", &plain)]), 24);
        assert_eq!(both.exposed("s", &long), Some(name.as_str()));
        assert_ne!(both.exposed("s", &plain), Some(name.as_str()));
        // A server that left is forgotten, in the file too.
        let t = crate::config::parse(&path, r#"{"mcpServers": {"t": {"command": "x"}}}"#).unwrap();
        again.keep(&t);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&name) && text.contains("t__p"), "{text}");
        // A corrupt file is ignored.
        std::fs::write(&path, "{not json").unwrap();
        let broken = Registry::load(&dir, None);
        assert_eq!(
            broken
                .assign("tools", &pairs(&[("s", &long)]), 24)
                .exposed("s", &long),
            Some(name.as_str())
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_server_keeps_a_bounded_number_of_names() {
        let dir = std::env::temp_dir().join(format!("mcpshare-names-cap-{}", std::process::id()));
        let r = Registry::load(&dir, None);
        let many: Vec<(String, String)> = (0..MAX_PER_SERVER)
            .map(|i| ("s".to_string(), format!("t{i}")))
            .collect();
        r.assign("tools", &many, 49);
        r.assign("tools", &pairs(&[("s", "new"), ("u", "x")]), 49);
        let all = lock(&r.given);
        let set = &all[&("tools".to_string(), 49)];
        assert_eq!(set.len(), 2, "past the cap, names no longer listed go");
        let _ = std::fs::remove_dir_all(dir);
    }
}
