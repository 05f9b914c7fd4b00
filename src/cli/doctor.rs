//! `mcpshare doctor` and `doctor processes`, as `doctor/` runs them.

use crate::error::Result;
use crate::state::home::Home;

/// Every check, printed; exit status 1 when one is an error.
pub(super) fn summary(as_json: bool) -> Result<i32> {
    crate::doctor::summary(as_json)
}

/// The records with what the OS says of each pid; with `cleanup`, remove
/// the stale ones instead.
pub(super) fn processes(home: &Home, as_json: bool, cleanup: bool) -> Result<i32> {
    crate::doctor::processes(home, as_json, cleanup)
}
