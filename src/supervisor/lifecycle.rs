//! The life of a supervised child: its phases, the crash window that marks
//! it `crashed`, the backoff before an automatic restart, and how many
//! missed health pings restart it. Rules only: no process, no I/O.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// This many crashes within CRASH_WINDOW mark the upstream `crashed`.
pub const CRASH_LIMIT: usize = 5;

pub const CRASH_WINDOW: Duration = Duration::from_secs(60);

/// Automatic restarts wait 1 s, doubling per recent crash, at most 30 s.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);

pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Health pings: this many missed in a row restart the upstream.
pub const PING_FAILURES: u32 = 3;

pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not running; the next request starts it.
    Idle,
    Starting,
    Running,
    Stopping,
    /// Crashed CRASH_LIMIT times within CRASH_WINDOW: requests are refused
    /// until a client connects anew or `mcpshare restart`.
    Crashed,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
            Phase::Crashed => "crashed",
        }
    }
}

/// The recent crashes of one upstream and how many restarts it had.
#[derive(Debug, Default)]
pub struct CrashHistory {
    crashes: VecDeque<Instant>,
    pub restarts: u32,
}

/// What follows a crash.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterCrash {
    /// Start again after this long.
    RestartIn(Duration),
    /// CRASH_LIMIT crashes within CRASH_WINDOW: stay down until asked.
    GiveUp,
}

impl CrashHistory {
    /// Count a crash at `now`: restart after a backoff of 1 s, doubling
    /// per crash still within the window, at most BACKOFF_MAX; or give up.
    pub fn crashed(&mut self, now: Instant) -> AfterCrash {
        self.restarts += 1;
        self.crashes.push_back(now);
        while self
            .crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > CRASH_WINDOW)
        {
            self.crashes.pop_front();
        }
        if self.crashes.len() >= CRASH_LIMIT {
            return AfterCrash::GiveUp;
        }
        let doublings = (self.crashes.len() as u32).saturating_sub(1).min(5);
        AfterCrash::RestartIn(
            BACKOFF_FIRST
                .saturating_mul(1 << doublings)
                .min(BACKOFF_MAX),
        )
    }

    /// `mcpshare restart`: the crashes so far no longer count.
    pub fn forgive(&mut self) {
        self.crashes.clear();
    }

    /// Crashes within the window.
    pub fn recent(&self) -> usize {
        self.crashes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_the_window_then_gives_up() {
        let mut h = CrashHistory::default();
        let t0 = Instant::now();
        let delays: Vec<AfterCrash> = (0..CRASH_LIMIT as u64)
            .map(|i| h.crashed(t0 + Duration::from_secs(i)))
            .collect();
        assert_eq!(delays[0], AfterCrash::RestartIn(Duration::from_secs(1)));
        assert_eq!(delays[1], AfterCrash::RestartIn(Duration::from_secs(2)));
        assert_eq!(delays[3], AfterCrash::RestartIn(Duration::from_secs(8)));
        assert_eq!(delays[CRASH_LIMIT - 1], AfterCrash::GiveUp);
        assert_eq!(h.restarts, CRASH_LIMIT as u32);
    }

    #[test]
    fn crashes_older_than_the_window_no_longer_count() {
        let mut h = CrashHistory::default();
        let t0 = Instant::now();
        for i in 0..(CRASH_LIMIT as u64 - 1) {
            h.crashed(t0 + Duration::from_secs(i));
        }
        let later = t0 + CRASH_WINDOW + Duration::from_secs(CRASH_LIMIT as u64);
        assert_eq!(h.crashed(later), AfterCrash::RestartIn(BACKOFF_FIRST));
        assert_eq!(h.recent(), 1);
        h.forgive();
        assert_eq!(h.recent(), 0);
    }
}
