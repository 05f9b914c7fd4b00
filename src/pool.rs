//! A pool of at most `max` named worker threads for the bridge: a job runs
//! on an idle worker if there is one, otherwise on a new one while fewer
//! than `max` run, otherwise it waits its turn in a queue (never dropped).
//! A [`Reservation`] promises a job a worker without queueing. Workers are
//! never retired: a bridge's concurrency peak is small and short-lived.
//!
//! And [`Limit`], a counting semaphore: how the daemon bounds the
//! connections it serves, so that it never runs out of file descriptors
//! under a burst.

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
    max: usize,
    queue: Mutex<Queue>,
    /// Idle workers wait here; each job wakes one.
    ready: Condvar,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Workers waiting for a job.
    idle: usize,
    spawned: usize,
    /// Workers promised to reservations not yet run.
    reserved: usize,
}

/// A worker promised to one job: it runs at once, never behind the queue.
/// Dropped unused, the promise is withdrawn.
pub struct Reservation {
    shared: Option<Arc<Shared>>,
}

impl Pool {
    /// A pool of at most `max` workers (at least one).
    pub fn new(name: &str, max: usize) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                name: name.to_string(),
                max: max.max(1),
                queue: Mutex::new(Queue::default()),
                ready: Condvar::new(),
            }),
        }
    }

    /// Run `job` on a worker, or queue it when every worker is busy or promised.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) {
        let q = lock(&self.shared.queue);
        let free = q.spawned + q.reserved < self.shared.max;
        self.shared.start(q, Box::new(job), free);
    }

    /// A worker for one job, if one is idle or may be started now without
    /// taking one promised to another.
    pub fn try_reserve(&self) -> Option<Reservation> {
        let mut q = lock(&self.shared.queue);
        let busy = q.spawned - q.idle.min(q.spawned) + q.jobs.len() + q.reserved;
        if busy >= self.shared.max {
            return None;
        }
        q.reserved += 1;
        Some(Reservation {
            shared: Some(self.shared.clone()),
        })
    }

    /// Jobs waiting for a worker.
    pub fn queued(&self) -> usize {
        lock(&self.shared.queue).jobs.len()
    }
}

impl Reservation {
    pub fn run(mut self, job: impl FnOnce() + Send + 'static) {
        let Some(shared) = self.shared.take() else {
            return;
        };
        let mut q = lock(&shared.queue);
        q.reserved -= 1;
        let free = q.spawned < shared.max;
        shared.start(q, Box::new(job), free);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            lock(&shared.queue).reserved -= 1;
        }
    }
}

impl Shared {
    /// Hand `job` to an idle worker, else start one if `may_spawn`, else queue it.
    fn start(self: &Arc<Self>, mut q: MutexGuard<'_, Queue>, job: Job, may_spawn: bool) {
        if q.idle > q.jobs.len() || !may_spawn {
            q.jobs.push_back(job);
            drop(q);
            self.ready.notify_one();
            return;
        }
        let n = q.spawned;
        q.spawned += 1;
        drop(q);
        // Kept here too, so a worker that cannot start loses no job.
        let slot = Arc::new(Mutex::new(Some(job)));
        let (shared, mine) = (self.clone(), slot.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{n}", self.name))
            .spawn(move || {
                let first = lock(&mine).take();
                worker(shared, first)
            });
        if let Err(e) = spawned {
            crate::log!("cannot start a worker thread: {e}");
            let Some(job) = lock(&slot).take() else {
                return;
            };
            let mut q = lock(&self.queue);
            q.spawned -= 1;
            if q.spawned == 0 {
                // No worker at all: run it here rather than never.
                drop(q);
                return run_job(job);
            }
            q.jobs.push_back(job);
        }
    }
}

/// Lock `m`, carrying on past a panic in another holder: the data under
/// every lock here stays consistent between statements.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn worker(shared: Arc<Shared>, first: Option<Job>) {
    if let Some(job) = first {
        run_job(job);
    }
    let mut q = lock(&shared.queue);
    loop {
        if let Some(job) = q.jobs.pop_front() {
            drop(q);
            run_job(job);
            q = lock(&shared.queue);
            continue;
        }
        q.idle += 1;
        q = shared.ready.wait(q).unwrap_or_else(|p| p.into_inner());
        q.idle -= 1;
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

/// A channel that holds at most `cap` messages, but allocates only for
/// what it holds (std's `sync_channel` reserves all `cap` slots up front,
/// which per request and per session costs more than the messages do).
pub fn queue<T>(cap: usize) -> (QueueTx<T>, QueueRx<T>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let len = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    (
        QueueTx {
            tx,
            len: len.clone(),
            cap,
        },
        QueueRx { rx, len },
    )
}

pub struct QueueTx<T> {
    tx: std::sync::mpsc::Sender<T>,
    len: Arc<std::sync::atomic::AtomicUsize>,
    cap: usize,
}

impl<T> Clone for QueueTx<T> {
    fn clone(&self) -> Self {
        QueueTx {
            tx: self.tx.clone(),
            len: self.len.clone(),
            cap: self.cap,
        }
    }
}

impl<T> QueueTx<T> {
    /// Queue `v` unless `cap` messages wait already; never blocks.
    pub fn try_send(&self, v: T) -> Result<(), std::sync::mpsc::TrySendError<T>> {
        use std::sync::atomic::Ordering::AcqRel;
        use std::sync::mpsc::TrySendError;
        if self.len.fetch_add(1, AcqRel) >= self.cap {
            self.len.fetch_sub(1, AcqRel);
            return Err(TrySendError::Full(v));
        }
        self.tx.send(v).map_err(|e| {
            self.len.fetch_sub(1, AcqRel);
            TrySendError::Disconnected(e.0)
        })
    }
}

pub struct QueueRx<T> {
    rx: std::sync::mpsc::Receiver<T>,
    len: Arc<std::sync::atomic::AtomicUsize>,
}

impl<T> QueueRx<T> {
    fn took(&self, v: T) -> T {
        self.len.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        v
    }

    pub fn recv_timeout(
        &self,
        t: std::time::Duration,
    ) -> Result<T, std::sync::mpsc::RecvTimeoutError> {
        self.rx.recv_timeout(t).map(|v| self.took(v))
    }

    pub fn try_recv(&self) -> Result<T, std::sync::mpsc::TryRecvError> {
        self.rx.try_recv().map(|v| self.took(v))
    }
}

#[cfg(test)]
mod queue_tests {
    use super::*;
    use std::sync::mpsc::TrySendError;

    #[test]
    fn a_queue_holds_at_most_its_cap_and_frees_what_is_taken() {
        let (tx, rx) = queue(2);
        tx.try_send(1).unwrap();
        tx.clone().try_send(2).unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!(rx.try_recv().unwrap(), 1);
        tx.try_send(4).unwrap();
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_millis(10))
                .unwrap(),
            2
        );
        assert_eq!(rx.try_recv().unwrap(), 4);
        drop(rx);
        assert!(matches!(tx.try_send(5), Err(TrySendError::Disconnected(5))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    #[test]
    fn a_blocked_job_never_holds_up_the_next() {
        let pool = Pool::new("test", 8);
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
    fn a_pool_runs_at_most_max_jobs_and_queues_the_rest() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let pool = Pool::new("test", 2);
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (go_tx, go_rx) = channel::<()>();
        let go_rx = Arc::new(Mutex::new(go_rx));
        let (done_tx, done_rx) = channel();
        for i in 0..5 {
            let (running, most, go, done) = (
                running.clone(),
                most.clone(),
                go_rx.clone(),
                done_tx.clone(),
            );
            pool.run(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let _ = lock(&go).recv_timeout(Duration::from_secs(5));
                running.fetch_sub(1, Ordering::SeqCst);
                done.send(i).unwrap();
            });
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while running.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(running.load(Ordering::SeqCst), 2, "both workers started");
        assert_eq!(pool.queued(), 3, "two run, three wait");
        assert!(pool.try_reserve().is_none(), "no worker is free");
        for _ in 0..5 {
            go_tx.send(()).unwrap();
        }
        let mut got: Vec<i32> = (0..5)
            .map(|_| done_rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        got.sort();
        assert_eq!(got, vec![0, 1, 2, 3, 4], "none was dropped");
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(lock(&pool.shared.queue).spawned, 2);
        // Idle again (each worker goes back to waiting just after its job
        // said it was done): a reservation runs its job at once.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while lock(&pool.shared.queue).idle < 2 && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        let reserved = pool.try_reserve().expect("a free worker");
        let (tx, rx) = channel();
        reserved.run(move || tx.send(()).unwrap());
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
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
