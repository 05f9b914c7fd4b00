//! An elastic pool of named worker threads for the bridge: a job runs on an
//! idle worker if there is one, otherwise on a new one, so a long job (a slow
//! tool call) never queues a short one (a ping) behind it. Workers are never
//! retired: a bridge's concurrency peak is small and short-lived.
//!
//! And [`Limit`], a counting semaphore: how the bridge bounds the requests it
//! has open at the daemon, and the daemon the connections it serves, so that
//! neither runs out of file descriptors under a burst.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    queue: Mutex<Queue>,
    /// Idle workers wait here; each job wakes exactly one.
    ready: Condvar,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Workers waiting for a job and not yet promised one.
    idle: usize,
    spawned: usize,
}

impl Pool {
    pub fn new(name: &str) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                name: name.to_string(),
                queue: Mutex::new(Queue::default()),
                ready: Condvar::new(),
            }),
        }
    }

    pub fn run(&self, job: impl FnOnce() + Send + 'static) {
        let job: Job = Box::new(job);
        let mut q = lock(&self.shared.queue);
        // Promise the job to an idle worker, or start a worker for it.
        if q.idle > 0 {
            q.idle -= 1;
            q.jobs.push_back(job);
            drop(q);
            self.shared.ready.notify_one();
            return;
        }
        let n = q.spawned;
        q.spawned += 1;
        drop(q);
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{n}", shared.name))
            .spawn(move || worker(shared, job));
        if let Err(e) = spawned {
            crate::log!("cannot start a worker thread: {e}");
        }
    }
}

/// Lock `m`, carrying on past a panic in another holder: the data under
/// every lock here stays consistent between statements.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn worker(shared: Arc<Shared>, first: Job) {
    run_job(first);
    let mut q = lock(&shared.queue);
    loop {
        q.idle += 1;
        let job = loop {
            if let Some(job) = q.jobs.pop_front() {
                break job;
            }
            q = shared.ready.wait(q).unwrap_or_else(|p| p.into_inner());
        };
        drop(q);
        run_job(job);
        q = lock(&shared.queue);
    }
}

fn run_job(job: Job) {
    if catch_unwind(AssertUnwindSafe(job)).is_err() {
        crate::log!(
            "a job in thread {:?} panicked",
            std::thread::current().name()
        );
    }
}

/// At most `max` permits out at once; `acquire` waits for one.
pub struct Limit {
    max: usize,
    /// Permits out, and callers waiting for one.
    state: Mutex<(usize, usize)>,
    freed: Condvar,
}

/// A permit from a [`Limit`], handed back when dropped (panics included).
pub struct Permit(Arc<Limit>);

impl Limit {
    pub fn new(max: usize) -> Arc<Limit> {
        Arc::new(Limit {
            max: max.max(1),
            state: Mutex::new((0, 0)),
            freed: Condvar::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, (usize, usize)> {
        lock(&self.state)
    }

    pub fn acquire(self: &Arc<Self>) -> Permit {
        let mut s = self.state();
        if s.0 >= self.max {
            s.1 += 1;
            while s.0 >= self.max {
                s = self.freed.wait(s).unwrap_or_else(|p| p.into_inner());
            }
            s.1 -= 1;
        }
        s.0 += 1;
        Permit(self.clone())
    }

    /// A permit if one is free now.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let mut s = self.state();
        if s.0 >= self.max {
            return None;
        }
        s.0 += 1;
        Some(Permit(self.clone()))
    }

    /// Is someone waiting for a permit?
    pub fn contended(&self) -> bool {
        self.state().1 > 0
    }

    /// Wait until every permit is back, or `deadline`; true if all are.
    /// The caller counts as waiting, so each returned permit wakes it.
    pub fn wait_idle(&self, deadline: std::time::Instant) -> bool {
        let mut s = self.state();
        s.1 += 1;
        while s.0 > 0 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            s = self
                .freed
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        s.1 -= 1;
        s.0 == 0
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.0 -= 1;
        // Spare the wake-up when nobody waits (the common case).
        if s.1 > 0 {
            self.0.freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    #[test]
    fn a_blocked_job_never_holds_up_the_next() {
        let pool = Pool::new("test");
        let (block_tx, block_rx) = channel::<()>();
        let (done_tx, done_rx) = channel();
        pool.run(move || {
            let _ = block_rx.recv();
        });
        for i in 0..4 {
            let done = done_tx.clone();
            pool.run(move || done.send(i).unwrap());
        }
        let mut got: Vec<i32> = (0..4)
            .map(|_| done_rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        got.sort();
        assert_eq!(got, vec![0, 1, 2, 3]);
        drop(block_tx);
    }

    #[test]
    fn a_limit_holds_the_next_caller_until_a_permit_returns() {
        let limit = Limit::new(2);
        let a = limit.acquire();
        let _b = limit.acquire();
        let (got_tx, got_rx) = channel();
        let l = limit.clone();
        let waiter = std::thread::spawn(move || {
            let _c = l.acquire();
            got_tx.send(()).unwrap();
        });
        // Both permits are out: the third caller must still be waiting.
        assert!(got_rx.recv_timeout(Duration::from_millis(200)).is_err());
        drop(a);
        got_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        waiter.join().unwrap();
        assert_eq!(limit.state().0, 1, "only _b is still out");
    }
}
