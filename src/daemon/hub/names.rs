//! The names clients see on the hub: `server__name` for tools and prompts,
//! within a length budget and the character set every client accepts
//! (`[A-Za-z0-9_-]`). A name over budget or with other characters is
//! shortened deterministically with a hash of the full name, so the same
//! server and tool always get the same name (across restarts too), and two
//! different tools never get one name. Rules only: no I/O.

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

/// The exposed name of every (server, name) pair of one list, and back.
#[derive(Debug, Default, Clone)]
pub struct Names {
    forward: BTreeMap<(String, String), String>,
    back: HashMap<String, (String, String)>,
}

impl Names {
    /// Names for these pairs, in a stable order (server, then name).
    pub fn assign(pairs: &[(String, String)], budget: usize) -> Names {
        let budget = budget.max(MIN_BUDGET);
        let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut names = Names::default();
        // Plain names first, so that a plain name never changes because a
        // shortened one happens to take it.
        for short in [false, true] {
            for (server, name) in &sorted {
                let plain = qualified(server, name);
                let is_plain = plain.len() <= budget && allowed(&plain);
                if is_plain == short {
                    continue;
                }
                let exposed = if is_plain {
                    plain
                } else {
                    let mut digits = HASH_DIGITS;
                    loop {
                        let candidate = shortened(server, name, budget, digits);
                        if !names.back.contains_key(&candidate) || digits >= 16 {
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
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in server.bytes().chain([0u8]).chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn short_names_are_qualified_and_split_back() {
        let n = Names::assign(&pairs(&[("fs", "read"), ("git", "read")]), DEFAULT_BUDGET);
        assert_eq!(n.exposed("fs", "read"), Some("fs__read"));
        assert_eq!(n.resolve("git__read"), Some(("git", "read")));
        assert_eq!(split("my-srv__tool__x"), Some(("my-srv", "tool__x")));
        assert_eq!(split("__x"), None);
    }

    #[test]
    fn long_names_fit_the_budget_with_claude_codes_prefix() {
        let server = "a-rather-long-server-name-here-xy";
        let tool = "create_or_update_a_very_long_entity_with_relations_and_observations";
        let n = Names::assign(&pairs(&[(server, tool)]), DEFAULT_BUDGET);
        let exposed = n.exposed(server, tool).unwrap();
        assert!(exposed.len() <= DEFAULT_BUDGET, "{exposed}");
        assert!(format!("mcp__mcpshare__{exposed}").len() <= 64);
        assert!(allowed(exposed), "{exposed}");
        assert_eq!(n.resolve(exposed), Some((server, tool)));
        // The same input, the same name (a restart changes nothing).
        let again = Names::assign(&pairs(&[(server, tool)]), DEFAULT_BUDGET);
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
        let n = Names::assign(&list, 24);
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
