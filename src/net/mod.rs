//! HTTP/1.1 on loopback: the daemon's server, the bridge's hot-path client
//! and the control client, over one wire module that both ends read HTTP
//! with. Knows nothing of MCP beyond moving its bytes.

pub mod client;
pub mod h1;
pub mod http;
pub mod wire;

/// Connections a process may hold at once: three quarters of the
/// descriptors it may open, the rest kept for pipes, logs and files.
pub fn connection_budget(fd_limit: Option<u64>) -> usize {
    let limit = fd_limit.unwrap_or(4096).min(1 << 20) as usize;
    (limit - limit / 4).max(16)
}
