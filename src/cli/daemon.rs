//! `mcpshare daemon`: the daemon in the foreground. It never forks or
//! detaches; clients start it on their own through the election.

use crate::error::Result;
use crate::state::home::Home;

/// Run the daemon until it stops.
pub(super) fn run() -> Result<i32> {
    crate::daemon::run(Home::open()?)?;
    Ok(0)
}
