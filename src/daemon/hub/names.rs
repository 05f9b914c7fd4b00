//! The names clients see on the hub: `server__name` for tools and prompts,
//! within a length budget and the character set every client accepts
//! (`[A-Za-z0-9_-]`). A name over budget or with other characters is
//! shortened deterministically with a hash of the full name, and two
//! different tools never get one name. A name given before is kept (the
//! daemon remembers them, see `registry`), so a tool's name stays when
//! others come. Rules only: no I/O.

use std::collections::{BTreeMap, HashMap};

/// The default budget: Claude Code prefixes `mcp__<entry>__` and caps the
/// whole at 64, so for an entry named `mcpshare` 64 - 15 characters remain.
pub const DEFAULT_BUDGET: usize = 49;
/// The smallest budget accepted: a server prefix, a character, a hash.
pub const MIN_BUDGET: usize = 16;
/// The separator between the server's name and its tool's or prompt's.
pub const SEPARATOR: &str = "__";
/// Hex digits of the hash in a shortened name (more on a collision).
const HASH_DIGITS: usize = 6;

/// The names given before to (server, name) pairs of one list within one
/// budget: a name once given stays (see [`Names::assign`]).
pub type Given = BTreeMap<(String, String), String>;

/// The exposed name of every (server, name) pair of one list, and back.
#[derive(Debug, Default, Clone)]
pub struct Names {
    forward: BTreeMap<(String, String), String>,
    back: HashMap<String, (String, String)>,
}

impl Names {
    /// Names for these pairs, in a stable order (server, then name). A
    /// pair keeps the name `given` it before while that name is within
    /// the budget, allowed and not taken in this list; any other pair's
    /// name is made afresh, never one `given` to another pair.
    pub fn assign(pairs: &[(String, String)], budget: usize, given: &Given) -> Names {
        let budget = budget.max(MIN_BUDGET);
        let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
        sorted.sort();
        sorted.dedup();
        let held: HashMap<&str, &(String, String)> =
            given.iter().map(|(pair, e)| (e.as_str(), pair)).collect();
        let mut names = Names::default();
        let mut fresh = Vec::new();
        for pair in sorted {
            match given.get(pair) {
                Some(e) if e.len() <= budget && allowed(e) && !names.back.contains_key(e) => {
                    names.insert(&pair.0, &pair.1, e.clone());
                }
                _ => fresh.push(pair),
            }
        }
        // The name `exposed` is free for `pair`.
        let free = |names: &Names, pair: &(String, String), exposed: &str| {
            !names.back.contains_key(exposed) && held.get(exposed).is_none_or(|p| *p == pair)
        };
        // Plain names first, so that a plain name never changes because a
        // shortened one happens to take it.
        for short in [false, true] {
            for pair in &fresh {
                let (server, name) = (&pair.0, &pair.1);
                let plain = qualified(server, name);
                let is_plain = plain.len() <= budget && allowed(&plain);
                if is_plain == short {
                    continue;
                }
                let exposed = if is_plain && free(&names, pair, &plain) {
                    plain
                } else {
                    let mut digits = HASH_DIGITS;
                    loop {
                        let candidate = shortened(server, name, budget, digits);
                        if free(&names, pair, &candidate) || digits >= 16 {
                            break candidate;
                        }
                        digits += 2;
                    }
                };
                names.insert(server, name, exposed);
            }
        }
        names
    }

    /// Every (server, name) pair with its exposed name.
    pub fn iter(&self) -> impl Iterator<Item = (&(String, String), &str)> {
        self.forward.iter().map(|(pair, e)| (pair, e.as_str()))
    }

    fn insert(&mut self, server: &str, name: &str, exposed: String) {
        self.back
            .insert(exposed.clone(), (server.to_string(), name.to_string()));
        self.forward
            .insert((server.to_string(), name.to_string()), exposed);
    }

    pub fn exposed(&self, server: &str, name: &str) -> Option<&str> {
        self.forward
            .get(&(server.to_string(), name.to_string()))
            .map(String::as_str)
    }

    /// The server and its own name behind an exposed name.
    pub fn resolve(&self, exposed: &str) -> Option<(&str, &str)> {
        self.back
            .get(exposed)
            .map(|(s, n)| (s.as_str(), n.as_str()))
    }
}

/// `server__name`.
pub fn qualified(server: &str, name: &str) -> String {
    format!("{server}{SEPARATOR}{name}")
}

/// The server and name of an unshortened exposed name: split on the first
/// `__` (server names never hold `__`).
pub fn split(exposed: &str) -> Option<(&str, &str)> {
    exposed
        .split_once(SEPARATOR)
        .filter(|(s, n)| !s.is_empty() && !n.is_empty())
}

fn allowed(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `server__<start of name>_<hash>` in `budget` characters, other
/// characters replaced by `_`; the server part is cut too when it alone
/// would not leave room.
fn shortened(server: &str, name: &str, budget: usize, digits: usize) -> String {
    let hash = format!("{:016x}", fnv1a(server, name));
    let hash = &hash[..digits.min(16)];
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    // Room for "__", at least one character of the name, "_" and the hash.
    let fixed = SEPARATOR.len() + 1 + hash.len();
    let server_room = budget.saturating_sub(fixed + 1).max(1);
    let server: String = clean(server).chars().take(server_room).collect();
    let name_room = budget.saturating_sub(server.len() + fixed).max(1);
    let name: String = clean(name).chars().take(name_room).collect();
    format!("{server}{SEPARATOR}{name}_{hash}")
}

fn fnv1a(server: &str, name: &str) -> u64 {
    crate::hash::Fnv::default()
        .bytes(server.as_bytes())
        .bytes(&[0])
        .bytes(name.as_bytes())
        .finish()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Owned (server, name) pairs.
    pub(in crate::daemon::hub) fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// Names for these pairs with nothing given before.
    fn fresh(list: &[(String, String)], budget: usize) -> Names {
        Names::assign(list, budget, &Given::new())
    }

    /// What `n` gives, as a registry of names given.
    fn given(n: &Names) -> Given {
        n.iter()
            .map(|(pair, e)| (pair.clone(), e.to_string()))
            .collect()
    }

    #[test]
    fn a_name_given_before_stays_when_a_newcomer_would_take_it() {
        // These two shorten to one name at 6 digits (found by search), and
        // the newcomer sorts first: alone it would take the older's name.
        let base = "x".repeat(60);
        let (old, new) = (format!("{base}37930"), format!("{base}31218"));
        let first = fresh(&pairs(&[("s", &old)]), 24);
        let name = first.exposed("s", &old).unwrap().to_string();
        let both = pairs(&[("s", &old), ("s", &new)]);
        assert_eq!(
            fresh(&both, 24).exposed("s", &new),
            Some(name.as_str()),
            "the case this test needs"
        );
        let n = Names::assign(&both, 24, &given(&first));
        assert_eq!(n.exposed("s", &old), Some(name.as_str()));
        let other = n.exposed("s", &new).unwrap();
        assert!(
            other != name && other.len() <= 24 && allowed(other),
            "{other}"
        );
        assert_eq!(n.resolve(other), Some(("s", new.as_str())));
    }

    #[test]
    fn a_plain_name_given_to_another_pair_makes_the_newcomer_shortened() {
        let long = "y".repeat(60);
        let first = fresh(&pairs(&[("s", &long)]), DEFAULT_BUDGET);
        let name = first.exposed("s", &long).unwrap().to_string();
        // A new tool whose plain name is the older one's shortened name.
        let plain = split(&name).unwrap().1.to_string();
        let both = pairs(&[("s", &long), ("s", &plain)]);
        assert_eq!(
            fresh(&both, DEFAULT_BUDGET).exposed("s", &plain),
            Some(name.as_str())
        );
        let n = Names::assign(&both, DEFAULT_BUDGET, &given(&first));
        assert_eq!(n.exposed("s", &long), Some(name.as_str()));
        let other = n.exposed("s", &plain).unwrap();
        assert_ne!(other, name);
        assert!(other.len() <= DEFAULT_BUDGET && allowed(other), "{other}");
    }

    #[test]
    fn names_given_before_are_kept_once_and_within_budget() {
        let list = pairs(&[("s", "a"), ("s", "b"), ("s", "c"), ("t", "d")]);
        let mut before = Given::new();
        // Two pairs given one name (a hand-edited file), one over budget,
        // one with a character no client accepts.
        before.insert(("s".into(), "a".into()), "s__same".into());
        before.insert(("s".into(), "b".into()), "s__same".into());
        before.insert(
            ("s".into(), "c".into()),
            "s__".to_string() + &"c".repeat(30),
        );
        before.insert(("t".into(), "d".into()), "t__d.d".into());
        let n = Names::assign(&list, MIN_BUDGET, &before);
        let mut seen = std::collections::HashSet::new();
        for (server, tool) in &list {
            let e = n.exposed(server, tool).unwrap();
            assert!(e.len() <= MIN_BUDGET && allowed(e), "{e}");
            assert!(seen.insert(e.to_string()), "{e} given twice");
            assert_eq!(n.resolve(e), Some((server.as_str(), tool.as_str())));
        }
        assert_eq!(n.exposed("s", "a"), Some("s__same"), "the first keeps it");
        assert_eq!(n.exposed("s", "c"), Some("s__c"));
        assert_eq!(n.exposed("t", "d"), Some("t__d"));
    }

    #[test]
    fn short_names_are_qualified_and_split_back() {
        let n = fresh(&pairs(&[("fs", "read"), ("git", "read")]), DEFAULT_BUDGET);
        assert_eq!(n.exposed("fs", "read"), Some("fs__read"));
        assert_eq!(n.resolve("git__read"), Some(("git", "read")));
        assert_eq!(split("my-srv__tool__x"), Some(("my-srv", "tool__x")));
        assert_eq!(split("__x"), None);
    }

    #[test]
    fn long_names_fit_the_budget_with_claude_codes_prefix() {
        let server = "a-rather-long-server-name-here-xy";
        let tool = "create_or_update_a_very_long_entity_with_relations_and_observations";
        let n = fresh(&pairs(&[(server, tool)]), DEFAULT_BUDGET);
        let exposed = n.exposed(server, tool).unwrap();
        assert!(exposed.len() <= DEFAULT_BUDGET, "{exposed}");
        assert!(format!("mcp__mcpshare__{exposed}").len() <= 64);
        assert!(allowed(exposed), "{exposed}");
        assert_eq!(n.resolve(exposed), Some((server, tool)));
        // The same input, the same name (a restart changes nothing).
        let again = fresh(&pairs(&[(server, tool)]), DEFAULT_BUDGET);
        assert_eq!(again.exposed(server, tool), Some(exposed));
    }

    #[test]
    fn names_that_would_collide_never_do() {
        // Same long prefix: only the hash tells them apart.
        let base = "x".repeat(60);
        let list = pairs(&[
            ("s", &format!("{base}1")),
            ("s", &format!("{base}2")),
            ("s", "a.b"),
            ("s", "a_b"),
        ]);
        let n = fresh(&list, 24);
        let mut seen = std::collections::HashSet::new();
        for (server, tool) in &list {
            let e = n.exposed(server, tool).unwrap();
            assert!(e.len() <= 24 && allowed(e), "{e}");
            assert!(seen.insert(e.to_string()), "{e} given twice");
            assert_eq!(n.resolve(e), Some((server.as_str(), tool.as_str())));
        }
        assert_eq!(
            n.exposed("s", "a_b"),
            Some("s__a_b"),
            "plain names stay plain"
        );
        assert_ne!(n.exposed("s", "a.b"), Some("s__a_b"));
    }
}
