//! An elastic pool of named worker threads for the bridge: a job runs on an
//! idle worker if there is one, otherwise on a new one, so a long job (a slow
//! tool call) never queues a short one (a ping) behind it. Workers are never
//! retired: a bridge's concurrency peak is small and short-lived.
//!
//! And [`Limit`], a counting semaphore: how the bridge bounds the requests it
//! has open at the daemon, and the daemon the connections it serves, so that
//! neither runs out of file descriptors under a burst.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Clone)]
pub struct Pool {
    tx: Sender<Job>,
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    rx: Mutex<Receiver<Job>>,
    /// Workers waiting for a job and not yet promised one.
    idle: AtomicUsize,
    spawned: AtomicUsize,
}

impl Pool {
    pub fn new(name: &str) -> Pool {
        let (tx, rx) = channel();
        let shared = Shared {
            name: name.to_string(),
            rx: Mutex::new(rx),
            idle: AtomicUsize::new(0),
            spawned: AtomicUsize::new(0),
        };
        Pool {
            tx,
            shared: Arc::new(shared),
        }
    }

    pub fn run(&self, job: impl FnOnce() + Send + 'static) {
        let job: Job = Box::new(job);
        // Promise the job to an idle worker, or start a worker for it.
        let claimed = self
            .shared
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if claimed {
            if let Err(e) = self.tx.send(job) {
                (e.0)();
            }
            return;
        }
        let shared = self.shared.clone();
        let n = shared.spawned.fetch_add(1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{n}", shared.name))
            .spawn(move || worker(shared, job));
        if let Err(e) = spawned {
            crate::log!("cannot start a worker thread: {e}");
        }
    }
}

fn worker(shared: Arc<Shared>, first: Job) {
    run_job(first);
    loop {
        shared.idle.fetch_add(1, Ordering::AcqRel);
        let job = match shared.rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => run_job(job),
            Err(_) => return,
        }
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
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Is someone waiting for a permit?
    pub fn contended(&self) -> bool {
        self.state().1 > 0
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
