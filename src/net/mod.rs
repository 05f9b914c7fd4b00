//! HTTP/1.1 on loopback: the daemon's server, the bridge's hot-path client
//! and the control client, over one wire module that both ends read HTTP
//! with. Knows nothing of MCP beyond moving its bytes.

pub mod client;
pub mod h1;
pub mod http;
pub mod wire;

/// Connections a process may hold at once, after raising its limit on
/// open descriptors: three quarters of the descriptors it may still open,
/// the rest kept for pipes, logs and files. Descriptors already open
/// (inherited from whoever started it, say) do not count as free.
pub fn connection_budget() -> usize {
    budget(
        crate::platform::raise_fd_limit(),
        crate::platform::open_descriptors(),
    )
}

fn budget(fd_limit: Option<u64>, open: Option<u64>) -> usize {
    let limit = fd_limit.unwrap_or(4096).min(1 << 20);
    let free = limit.saturating_sub(open.unwrap_or(0)) as usize;
    (free - free / 4).max(16)
}

#[cfg(test)]
mod tests {
    use super::budget;

    #[test]
    fn the_budget_is_three_quarters_of_what_is_free() {
        assert_eq!(budget(Some(64), Some(0)), 48);
        assert_eq!(budget(Some(64), Some(24)), 30);
        assert_eq!(budget(None, None), 3072);
        // Never below 16, even with almost nothing free.
        assert_eq!(budget(Some(64), Some(60)), 16);
        assert_eq!(budget(Some(64), Some(100)), 16);
    }
}
