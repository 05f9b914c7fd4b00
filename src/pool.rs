//! An elastic pool of named worker threads for the bridge: a job runs on an
//! idle worker if there is one, otherwise on a new one, so a long job (a slow
//! tool call) never queues a short one (a ping) behind it. Workers are never
//! retired: a bridge's concurrency peak is small and short-lived.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

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
}
