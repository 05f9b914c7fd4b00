//! `daemon.json`: how clients find the live daemon. Written atomically,
//! mode 0600, schema-versioned and strictly validated: a missing, partial or
//! invalid manifest reads as "none". The lock, not this file, says whether a
//! daemon lives; the pid in here only identifies a process.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Schema of daemon.json.
pub const SCHEMA: u32 = 1;
/// Version of the control protocol between mcpshare clients and the daemon.
/// Clients attach only to a daemon of the same protocol.
pub const PROTOCOL: u32 = 1;

/// How often a daemon rewrites its manifest's heartbeat.
pub const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: u32,
    pub version: String,
    pub protocol: u32,
    pub pid: u32,
    /// Process start time in clock ticks since boot, 0 where unknown.
    pub start_time: u64,
    pub port: u16,
    pub url: String,
    pub token: String,
    /// Unix milliseconds.
    pub started_at: u64,
    /// Unix milliseconds of the last heartbeat.
    pub heartbeat_at: u64,
    pub exe: String,
}

impl Manifest {
    /// Strict validation; anything off means the manifest is ignored.
    pub fn validate(&self) -> Result<(), String> {
        if self.schema != SCHEMA {
            return Err(format!("schema {} (want {SCHEMA})", self.schema));
        }
        if self.pid == 0 {
            return Err("pid 0".into());
        }
        if self.port == 0 {
            return Err("port 0".into());
        }
        if self.url != url_for(self.port) {
            return Err(format!(
                "url {} does not match port {}",
                self.url, self.port
            ));
        }
        if self.token.len() != 64 || !self.token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("token is not 64 hex digits".into());
        }
        if self.version.is_empty() {
            return Err("empty version".into());
        }
        Ok(())
    }

    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        m.validate()?;
        Ok(m)
    }

    /// The manifest at `path`, or None when missing, partial or invalid.
    pub fn read(path: &Path) -> Option<Manifest> {
        Manifest::parse(&std::fs::read(path).ok()?).ok()
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        crate::state::home::write_atomic(path, &bytes)
    }

    /// The process this manifest names, for identity checks before signalling.
    pub fn process(&self) -> crate::platform::ProcessId {
        crate::platform::ProcessId {
            pid: self.pid,
            start_time: self.start_time,
        }
    }
}

pub fn url_for(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            schema: SCHEMA,
            version: "0.1.0".into(),
            protocol: PROTOCOL,
            pid: 42,
            start_time: 7,
            port: 4242,
            url: url_for(4242),
            token: "ab".repeat(32),
            started_at: 1,
            heartbeat_at: 2,
            exe: "/bin/mcpshare".into(),
        }
    }

    #[test]
    fn round_trips() {
        let m = sample();
        let bytes = serde_json::to_vec(&m).unwrap();
        assert_eq!(Manifest::parse(&bytes).unwrap(), m);
    }

    #[test]
    fn rejects_partial_corrupt_and_invalid() {
        let bytes = serde_json::to_vec(&sample()).unwrap();
        assert!(Manifest::parse(&bytes[..bytes.len() / 2]).is_err());
        assert!(Manifest::parse(b"not json").is_err());
        assert!(Manifest::parse(b"{}").is_err());
        for bad in [
            Manifest { pid: 0, ..sample() },
            Manifest {
                port: 0,
                ..sample()
            },
            Manifest {
                schema: 2,
                ..sample()
            },
            Manifest {
                url: "http://10.0.0.1:4242".into(),
                ..sample()
            },
            Manifest {
                token: "short".into(),
                ..sample()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
