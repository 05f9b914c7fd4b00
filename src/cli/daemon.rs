//! `mcpshare daemon`: the daemon in the foreground. It never forks or
//! detaches; clients start it on their own through the election.

use crate::error::Result;
use crate::state::home::Home;

/// Run the daemon until it stops.
pub(super) fn run() -> Result<i32> {
    // The console shows the doctor's findings; the doctor sits above the
    // daemon, so the daemon is lent the function.
    crate::daemon::run(Home::open()?, |home| {
        serde_json::to_value(crate::doctor::checks(home)).unwrap_or_default()
    })?;
    Ok(0)
}
