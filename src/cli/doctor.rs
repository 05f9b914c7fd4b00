//! `mcpshare doctor` and `doctor processes`: `doctor/` finds and prints;
//! the one action, `--cleanup-stale-records`, is here. It removes only the
//! records doctor finds stale (process and group gone); it never signals.

use crate::error::{Error, Result};
use crate::state::home::Home;
use std::path::PathBuf;

/// Every check, printed; exit status 1 when one is an error.
pub(super) fn summary(as_json: bool) -> Result<i32> {
    crate::doctor::summary(as_json)
}

/// The records with what the OS says of each pid; with `cleanup`, remove
/// the stale ones instead.
pub(super) fn processes(home: &Home, as_json: bool, cleanup: bool) -> Result<i32> {
    if !cleanup {
        return crate::doctor::processes(home, as_json);
    }
    let (all, bad) = crate::doctor::seen(home);
    crate::doctor::warn_corrupt(&bad);
    for s in all.iter().filter(|s| s.stale()) {
        match std::fs::remove_file(&s.path) {
            Ok(()) => eprintln!(
                "mcpshare: removed stale record {} (pid {} is gone)",
                s.path, s.record.pid
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Path(PathBuf::from(&s.path), e)),
        }
    }
    Ok(0)
}
