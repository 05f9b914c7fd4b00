//! What the hub last saw of each configured server (its `initialize`
//! result and its lists), kept under the home so that a lazy, stopped or
//! crashed server's tools stay listed without starting it; a call starts
//! it. Files are written temp + rename, one per server.

use crate::pool::lock;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

pub struct Catalog {
    dir: PathBuf,
    /// What was read or written, by server: the files are read once.
    known: Mutex<HashMap<String, Value>>,
}

impl Catalog {
    pub fn new(dir: PathBuf) -> Catalog {
        Catalog {
            dir,
            known: Mutex::new(HashMap::new()),
        }
    }

    fn path(&self, server: &str) -> PathBuf {
        self.dir.join(format!("{server}.json"))
    }

    /// `key` of what is known of `server`, or null.
    pub fn field(&self, server: &str, key: &str) -> Value {
        self.read_with(server, |v| v[key].clone())
    }

    fn read_with<T>(&self, server: &str, f: impl FnOnce(&Value) -> T) -> T {
        let mut known = lock(&self.known);
        f(known
            .entry(server.to_string())
            .or_insert_with(|| self.load(server)))
    }

    fn load(&self, server: &str) -> Value {
        std::fs::read(self.path(server))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    }

    /// Remember `value` as `server`'s `key` (`init`, `tools`, ...); the
    /// file is written (temp + rename) only when it changes.
    pub fn put(&self, server: &str, key: &str, value: Value) {
        let mut known = lock(&self.known);
        let entry = known
            .entry(server.to_string())
            .or_insert_with(|| self.load(server));
        if !entry.is_object() {
            *entry = json!({});
        }
        if entry[key] == value {
            return;
        }
        entry[key] = value;
        let text = entry.to_string();
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|()| crate::state::home::write_atomic(&self.path(server), text.as_bytes()));
        if let Err(e) = written {
            crate::log!("cannot keep the catalog of server {server}: {e}");
        }
    }

    /// Forget a server that left the config.
    pub fn forget(&self, server: &str) {
        lock(&self.known).remove(server);
        let _ = std::fs::remove_file(self.path(server));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalog_keeps_each_key_of_each_server() {
        let dir = std::env::temp_dir().join(format!("mcpshare-catalog-{}", std::process::id()));
        let c = Catalog::new(dir.clone());
        assert_eq!(c.field("a", "tools"), Value::Null);
        c.put("a", "tools", json!([{"name": "x"}]));
        c.put("a", "init", json!({"capabilities": {}}));
        c.put("b", "tools", json!([]));
        assert_eq!(c.field("a", "tools")[0]["name"], "x");
        assert_eq!(c.field("a", "init"), json!({"capabilities": {}}));
        c.forget("a");
        assert_eq!(c.field("a", "tools"), Value::Null);
        assert_eq!(c.field("b", "tools"), json!([]));
        let _ = std::fs::remove_dir_all(dir);
    }
}
