//! The roots of the clients sharing an upstream: each attached client's
//! list, their union given to the child, and `roots/list_changed` when it
//! grows. Never gives one client's roots to another's child alone.

use super::*;

/// How long the child's `roots/list` waits for the first client's roots
/// (the child often asks during its handshake, before any client is
/// attached); then it is answered with the roots known, possibly none, and
/// told `roots/list_changed` when more arrive.
pub(super) const ROOTS_WAIT: Duration = Duration::from_secs(5);

/// The roots of each attached roots-capable client, in the order they
/// attached, and the list the child was last given.
#[derive(Default)]
pub(super) struct RootsBook {
    pub(super) by_session: Vec<(String, Vec<Value>)>,
    pub(super) told: Option<Vec<Value>>,
}

impl RootsBook {
    /// Every client's roots, each URI once, in the order first seen; None
    /// while no client has said.
    pub(super) fn union(&self) -> Option<Vec<Value>> {
        if self.by_session.is_empty() {
            return None;
        }
        let mut seen = std::collections::HashSet::new();
        let mut all = Vec::new();
        for root in self.by_session.iter().flat_map(|(_, r)| r) {
            let uri = root.get("uri").map(Value::to_string).unwrap_or_default();
            if seen.insert(uri) {
                all.push(root.clone());
            }
        }
        Some(all)
    }
}

impl Upstream {
    /// A client said what its roots are (on attaching or after its
    /// `roots/list_changed`): they join the union, replacing only its own.
    pub fn set_roots(&self, session: &Session, roots: Vec<Value>) {
        let mut book = lock(&self.roots);
        // Closed meanwhile: its roots left with it (close marks it closed
        // before it takes this lock to forget them).
        if session.is_closed() {
            return;
        }
        match book.by_session.iter_mut().find(|(s, _)| *s == session.id) {
            Some((_, r)) => *r = roots,
            None => book.by_session.push((session.id.clone(), roots)),
        }
        self.roots_known.notify_all();
        self.tell_roots_changed(book);
    }

    pub(super) fn forget_roots(&self, session_id: &str) {
        let mut book = lock(&self.roots);
        let before = book.by_session.len();
        book.by_session.retain(|(s, _)| s != session_id);
        if book.by_session.len() != before {
            self.tell_roots_changed(book);
        }
    }

    /// Tell the child `roots/list_changed` if the union differs from what
    /// it was last given (it asks again and gets the new union).
    pub(super) fn tell_roots_changed(&self, book: MutexGuard<'_, RootsBook>) {
        let now = book.union().unwrap_or_default();
        if book.told.as_ref().is_none_or(|told| *told == now) {
            return;
        }
        drop(book);
        let generation = {
            let st = self.lock();
            if st.phase != Phase::Running {
                return;
            }
            st.generation
        };
        let changed = jsonrpc::notification("notifications/roots/list_changed", None);
        if let Err(e) = self.write(generation, &changed) {
            crate::log!("upstream {}: roots/list_changed not sent: {e}", self.id);
        }
    }

    /// The child asks for its roots: the union of the attached clients'
    /// roots. Until the first client has said, the answer waits (bounded,
    /// on a thread of its own: the reader never waits).
    pub(super) fn answer_roots(self: &Arc<Self>, generation: u64, child_id: Value) {
        if lock(&self.roots).union().is_some() || !self.roots_may_come() {
            return self.give_roots(generation, child_id);
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("roots-{}", self.id))
            .spawn(move || {
                let deadline = Instant::now() + ROOTS_WAIT;
                let mut book = lock(&me.roots);
                while book.union().is_none() && me.roots_may_come() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    book = me
                        .roots_known
                        .wait_timeout(book, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                drop(book);
                me.give_roots(generation, child_id);
            });
        if let Err(e) = spawned {
            crate::log!("upstream {}: cannot wait for roots: {e}", self.id);
        }
    }

    /// Can a client's roots still arrive: none attached yet (the child asked
    /// during its handshake), or one that declared roots has not said yet?
    pub(super) fn roots_may_come(&self) -> bool {
        let sessions = self.live_sessions();
        sessions.is_empty() || sessions.iter().any(|s| s.has_capability("roots"))
    }

    pub(super) fn give_roots(&self, generation: u64, child_id: Value) {
        let roots = {
            let mut book = lock(&self.roots);
            let roots = book.union().unwrap_or_default();
            book.told = Some(roots.clone());
            roots
        };
        let reply = jsonrpc::result(child_id, json!({"roots": roots}));
        if let Err(e) = self.write(generation, &reply) {
            crate::log!("upstream {}: roots/list not answered: {e}", self.id);
        }
    }
}
