//! What the hub last saw of each configured server (its `initialize`
//! result and its lists), kept under the home so that a lazy, stopped or
//! crashed server's tools stay listed without starting it; a call starts
//! it. Files are written temp + rename, one per server.

use crate::pool::lock;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Mutex;

pub struct Catalog {
    dir: PathBuf,
    /// One writer at a time: each write is a read, a change and a rename.
    writing: Mutex<()>,
}

impl Catalog {
    pub fn new(dir: PathBuf) -> Catalog {
        Catalog {
            dir,
            writing: Mutex::new(()),
        }
    }

    fn path(&self, server: &str) -> PathBuf {
        self.dir.join(format!("{server}.json"))
    }

    /// What is known of `server`, or null.
    pub fn read(&self, server: &str) -> Value {
        std::fs::read(self.path(server))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    }

    /// Remember `value` as `server`'s `key` (`init`, `tools`, ...).
    pub fn put(&self, server: &str, key: &str, value: Value) {
        let _one = lock(&self.writing);
        let mut known = self.read(server);
        if !known.is_object() {
            known = json!({});
        }
        if known[key] == value {
            return;
        }
        known[key] = value;
        let written = std::fs::create_dir_all(&self.dir).and_then(|()| {
            crate::state::home::write_atomic(&self.path(server), known.to_string().as_bytes())
        });
        if let Err(e) = written {
            crate::log!("cannot keep the catalog of server {server}: {e}");
        }
    }

    /// Forget a server that left the config.
    pub fn forget(&self, server: &str) {
        let _one = lock(&self.writing);
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
        assert_eq!(c.read("a"), Value::Null);
        c.put("a", "tools", json!([{"name": "x"}]));
        c.put("a", "init", json!({"capabilities": {}}));
        c.put("b", "tools", json!([]));
        assert_eq!(c.read("a")["tools"][0]["name"], "x");
        assert_eq!(c.read("a")["init"], json!({"capabilities": {}}));
        c.forget("a");
        assert_eq!(c.read("a"), Value::Null);
        assert_eq!(c.read("b")["tools"], json!([]));
        let _ = std::fs::remove_dir_all(dir);
    }
}
