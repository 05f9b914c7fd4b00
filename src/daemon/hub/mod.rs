//! The hub: one MCP endpoint (`/mcp`, `/mcp/p/PROFILE`) over every
//! configured, enabled server, or a profile's. It is a second [`Door`] of
//! the same Streamable HTTP endpoint, and a hub session is one member
//! session per server on that server's shared upstream: ids, progress,
//! cancellation, levels, subscriptions, roots and server→client requests
//! are routed by the same mux as on the drop-in path. The hub names tools
//! and prompts `server__name` (see `names`), routes resources by owner,
//! merges lists, capabilities and instructions. It never sends a request to
//! a server that does not own the name or URI it carries.

mod catalog;
mod lists;
mod merge;
pub mod names;
mod registry;
mod relay;
mod selection;

pub use catalog::Catalog;
pub use registry::Registry;
use selection::profiles;
pub use selection::{Selection, registration};

use super::Daemon;
use super::endpoint::{self, Door, Front, Refusal, client_process};
use super::servers::Ask;
use crate::config::ToolFilter;
use crate::mcp::jsonrpc::{self, Kind};
use crate::mcp::message::Message;
use crate::mux::session::Session;
use crate::mux::upstream::{Answerer, Reply, Upstream};
use crate::net::http::Request;
use crate::pool::{QueueTx, lock};
use names::Names;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Pages of one server's list read at most.
const MAX_PAGES: usize = 100;
/// The scheme of a resource URI two servers both claim, as clients see it:
/// `mcpshare-hub://SERVER/ORIGINAL`.
const SHARED_URI: &str = "mcpshare-hub://";

/// Serve a request on the hub's endpoint.
pub fn handle(d: &Arc<Daemon>, req: Request) {
    match Selection::from_url(req.url()) {
        Ok(selection) => endpoint::serve(d, req, &HubDoor { selection }),
        Err(e) => endpoint::rpc_error(req, 404, Value::Null, -32001, &e),
    }
}

struct HubDoor {
    selection: Selection,
}

impl Door for HubDoor {
    fn session(&self, d: &Arc<Daemon>, sid: &str) -> Result<Arc<dyn Front>, Refusal> {
        match lock(&d.hubs).get(sid) {
            Some(h) if h.selection == self.selection && !h.is_closed() => Ok(h.clone()),
            _ => Err((404, -32001, "Session not found".to_string())),
        }
    }

    fn open(
        &self,
        d: &Arc<Daemon>,
        req: &Request,
        msg: &Message,
    ) -> Result<(Value, Arc<dyn Front>), (u16, Value)> {
        let (result, hub) = HubSession::open(d, req, msg, &self.selection)
            .map_err(|e| (200, jsonrpc::error(Value::Null, jsonrpc::UNAVAILABLE, e)))?;
        lock(&d.hubs).insert(hub.id.clone(), hub.clone());
        Ok((result, hub))
    }

    fn end(&self, d: &Arc<Daemon>, sid: &str, reason: &str) {
        d.end_hub(sid, reason);
    }
}

/// A server's list items, shared.
type Items = Arc<Vec<Value>>;

/// What a hub list answer is made of: each member's upstream, whether it
/// runs, and its list version.
type ListKey = Vec<(String, bool, (u64, u64))>;

/// An upstream's list as last asked, by (upstream id, field): its list
/// version then, and the items. Shared by every hub session.
pub type ListsSeen = Mutex<HashMap<(String, String), ((u64, u64), Arc<Vec<Value>>)>>;

/// A server started for a hub session: its upstream and `initialize` result.
type Started = Result<(Arc<Upstream>, Value), String>;

/// One server of a hub session: its member session on the server's upstream.
#[derive(Clone)]
struct Member {
    server: String,
    session: Arc<Session>,
}

/// Resource URIs as clients see them → (server, the server's URI).
#[derive(Default)]
struct Owners {
    uris: HashMap<String, (String, String)>,
    /// Template literal prefixes (before the first `{`) → server.
    templates: Vec<(String, String)>,
}

pub struct HubSession {
    pub id: String,
    /// Itself, for the relay threads it starts.
    me: Weak<HubSession>,
    version: String,
    selection: Selection,
    daemon: Weak<Daemon>,
    client: Option<crate::platform::ProcessId>,
    client_name: Option<String>,
    /// The client's capabilities, given to each member session.
    capabilities: Value,
    /// Where and with what environment the client runs, for the servers'
    /// `${VAR}` references and `per-cwd` servers.
    cwd: String,
    env: BTreeMap<String, String>,
    filter: Mutex<ToolFilter>,
    members: Mutex<Vec<Member>>,
    tools: Mutex<Names>,
    prompts: Mutex<Names>,
    owners: Mutex<Owners>,
    /// Each list's last answer (its JSON text), with what it was made of.
    answers: Mutex<HashMap<String, (ListKey, Arc<String>)>>,
    /// What this session last listed of each server, by (server, field):
    /// a server's `list_changed` is passed on when it differs.
    seen: Mutex<HashMap<(String, String), Items>>,
    stream: Mutex<Option<QueueTx<Message>>>,
    closed: AtomicBool,
    /// Its client stopped reading its stream: it ends.
    stalled: AtomicBool,
    /// Held while members are re-attached or the set is refreshed.
    reattach: Mutex<()>,
    last_seen: Mutex<Instant>,
    next_id: AtomicU64,
}

impl HubSession {
    fn open(
        d: &Arc<Daemon>,
        req: &Request,
        msg: &Message,
        selection: &Selection,
    ) -> Result<(Value, Arc<HubSession>), String> {
        let params = msg.value_at(&["params"]).unwrap_or(Value::Null);
        let version = jsonrpc::negotiate(params.get("protocolVersion").and_then(Value::as_str));
        let client = client_process(req);
        let (cwd, env) = match &client {
            Some(c) => (
                crate::platform::procs::cwd_of(c.pid).unwrap_or_default(),
                crate::platform::procs::environ_of(c.pid).unwrap_or_default(),
            ),
            None => (String::new(), BTreeMap::new()),
        };
        let config = d.servers.config();
        let (chosen, filter) = selection.choose(&config, &profiles(&d.servers.path))?;
        if chosen.is_empty() {
            return Err(format!(
                "no enabled server for the hub in {}; hint: mcpshare add NAME -- COMMAND",
                d.servers.path.display()
            ));
        }
        let id = super::random_token().map_err(|e| e.to_string())?;
        let hub = Arc::new_cyclic(|me| HubSession {
            id,
            me: me.clone(),
            version: version.to_string(),
            selection: selection.clone(),
            daemon: Arc::downgrade(d),
            client,
            client_name: params
                .pointer("/clientInfo/name")
                .and_then(Value::as_str)
                .map(String::from),
            capabilities: params.get("capabilities").cloned().unwrap_or(json!({})),
            cwd,
            env,
            filter: Mutex::new(filter),
            members: Mutex::new(Vec::new()),
            tools: Mutex::new(Names::default()),
            prompts: Mutex::new(Names::default()),
            owners: Mutex::new(Owners::default()),
            answers: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
            stream: Mutex::new(None),
            closed: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            reattach: Mutex::new(()),
            last_seen: Mutex::new(Instant::now()),
            next_id: AtomicU64::new(1),
        });
        // Every server starts at once; the slowest bounds the wait.
        let started: Vec<(String, Started)> = std::thread::scope(|s| {
            let handles: Vec<_> = chosen
                .iter()
                .map(|name| {
                    let hub = &hub;
                    (
                        name.clone(),
                        s.spawn(move || {
                            let up = d.register_server(&hub.ask(name))?;
                            // A lazy server not running, known from before,
                            // waits for its first call.
                            let lazy = d.servers.config().get(name).is_some_and(|s| s.lazy);
                            let known = d.catalog.field(name, "init");
                            if lazy && up.pid().is_none() && known.is_object() {
                                return Ok((up, known));
                            }
                            let init = up.ensure_running(true)?;
                            d.catalog.put(name, "init", init.clone());
                            Ok((up, init))
                        }),
                    )
                })
                .collect();
            handles
                .into_iter()
                .map(|(n, h)| {
                    (
                        n,
                        h.join()
                            .unwrap_or_else(|_| Err("its start panicked".into())),
                    )
                })
                .collect()
        });
        let (mut inits, mut unavailable, mut members) = (Vec::new(), Vec::new(), Vec::new());
        for (server, outcome) in started {
            match outcome {
                Ok((up, init)) => {
                    members.push(hub.member(d, &server, &up));
                    inits.push((server, init));
                }
                Err(e) => {
                    crate::log!("hub session {}: server {server} unavailable: {e}", hub.id);
                    unavailable.push((server, e));
                }
            }
        }
        if members.is_empty() {
            let why: Vec<String> = unavailable
                .iter()
                .map(|(s, e)| format!("{s}: {e}"))
                .collect();
            return Err(format!(
                "no server of the hub could start: {}",
                why.join("; ")
            ));
        }
        *lock(&hub.members) = members;
        let mut result = json!({
            "protocolVersion": version,
            "capabilities": merge::capabilities(&inits),
            "serverInfo": {"name": "mcpshare", "version": env!("CARGO_PKG_VERSION")},
        });
        if let Some(text) = merge::instructions(&inits, &unavailable) {
            result["instructions"] = json!(text);
        }
        Ok((result, hub))
    }

    /// How this session asks the daemon for server `name`.
    fn ask(&self, name: &str) -> Ask {
        Ask {
            server: name.to_string(),
            cwd: self.cwd.clone(),
            env: self.env.clone(),
            config: None,
            isolated: false,
        }
    }

    /// A member session on `up` for server `server`.
    fn member(&self, d: &Daemon, server: &str, up: &Arc<Upstream>) -> Member {
        let session = d.new_session(
            up,
            self.version.clone(),
            self.capabilities.clone(),
            self.client.clone(),
            self.client_name.clone(),
        );
        let m = Member {
            server: server.to_string(),
            session,
        };
        if let Some(tx) = lock(&self.stream).clone() {
            self.relay(&m, tx);
        }
        m
    }

    /// The members, each attached again if its session ended (its server
    /// restarted on a config change, or was stopped); a server gone from
    /// the config leaves, and the client is told its lists changed.
    fn members(&self) -> Vec<Member> {
        let Some(d) = self.daemon.upgrade() else {
            return lock(&self.members).clone();
        };
        let current = lock(&self.members).clone();
        if self.is_closed() || current.iter().all(|m| !m.session.is_closed()) {
            return current;
        }
        // One re-attach at a time; another may have done it meanwhile.
        let _one = lock(&self.reattach);
        let current = lock(&self.members).clone();
        if self.is_closed() || current.iter().all(|m| !m.session.is_closed()) {
            return current;
        }
        let mut changed = false;
        let mut next = Vec::new();
        for m in current {
            if !m.session.is_closed() {
                next.push(m);
                continue;
            }
            changed = true;
            match d.register_server(&self.ask(&m.server)) {
                Ok(up) => next.push(self.member(&d, &m.server, &up)),
                Err(e) => crate::log!("hub session {}: server {} left: {e}", self.id, m.server),
            }
        }
        *lock(&self.members) = next.clone();
        if changed {
            self.lists_changed();
        }
        next
    }

    /// The config changed: take in servers it now selects, let go of those
    /// it no longer does, and tell the client its lists changed.
    pub fn refresh(&self, d: &Daemon) {
        let Ok((chosen, filter)) = self
            .selection
            .choose(&d.servers.config(), &profiles(&d.servers.path))
        else {
            return;
        };
        let _one = lock(&self.reattach);
        if self.is_closed() {
            return;
        }
        *lock(&self.filter) = filter;
        lock(&self.answers).clear();
        let current = lock(&self.members).clone();
        let mut next: Vec<Member> = Vec::new();
        let mut leaving = Vec::new();
        for m in current {
            if chosen.contains(&m.server) {
                next.push(m);
            } else {
                leaving.push(m);
            }
        }
        // A server that leaves the hub answers its calls in flight first.
        if !leaving.is_empty()
            && let Some(d) = self.daemon.upgrade()
        {
            let id = self.id.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("hub-leave-{}", &id[..id.len().min(8)]))
                .spawn(move || {
                    let deadline = Instant::now() + super::servers::RELOAD_DRAIN;
                    let (_never, tick) = std::sync::mpsc::channel::<()>();
                    while leaving.iter().any(|m| m.session.has_calls()) && Instant::now() < deadline
                    {
                        let _ = tick.recv_timeout(Duration::from_millis(20));
                    }
                    for m in leaving {
                        d.end_session(&m.session.id, "its server left the hub");
                    }
                });
            if let Err(e) = spawned {
                crate::log!("hub session {id}: cannot let a server go: {e}");
            }
        }
        for name in &chosen {
            if next.iter().any(|m| &m.server == name) {
                continue;
            }
            match d.register_server(&self.ask(name)) {
                Ok(up) => next.push(self.member(d, name, &up)),
                Err(e) => crate::log!("hub session {}: server {name} unavailable: {e}", self.id),
            }
        }
        *lock(&self.members) = next;
        self.lists_changed();
    }

    fn lists_changed(&self) {
        for list in ["tools", "prompts", "resources"] {
            self.push(Message::from_value(&jsonrpc::notification(
                &format!("notifications/{list}/list_changed"),
                None,
            )));
        }
    }

    /// A message of the hub's own on the client's stream (dropped when no
    /// stream is open: the client lists afresh when it attaches).
    fn push(&self, msg: Message) {
        if let Some(tx) = lock(&self.stream).as_ref() {
            let _ = tx.try_send(msg);
        }
    }

    fn member_named(&self, server: &str) -> Option<Member> {
        self.members().into_iter().find(|m| m.server == server)
    }

    /// Ask a member and wait (bounded) for the result.
    fn ask_member(&self, m: &Member, method: &str, params: Value) -> Result<Value, String> {
        let id = json!(format!(
            "mcpshare-hub-{}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        ));
        let msg = Message::from_value(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        );
        let timeout = m.session.upstream.tuning().request_timeout;
        let answer = match m.session.upstream.clone().request(&m.session, msg, None)? {
            Reply::Local(a) => a,
            Reply::Forwarded(rx) => {
                let deadline = Instant::now() + timeout;
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left) {
                        Ok(a) if a.kind() == Kind::Response => break a,
                        Ok(_) => continue,
                        Err(_) => {
                            Front::timed_out(m.session.as_ref(), &id);
                            return Err(format!("{method} of {} got no answer", m.server));
                        }
                    }
                }
            }
        };
        let v = answer.to_value().unwrap_or(Value::Null);
        match v.get("error") {
            Some(e) => Err(e["message"].as_str().unwrap_or("error").to_string()),
            None => Ok(v["result"].clone()),
        }
    }

    /// The member and its own name behind an exposed tool or prompt name.
    fn resolve(&self, names: &Mutex<Names>, exposed: &str) -> Option<(Member, String)> {
        let found = lock(names)
            .resolve(exposed)
            .map(|(s, n)| (s.to_string(), n.to_string()));
        let (server, name) = match found {
            Some(f) => f,
            // Called before any list: the plain `server__name` form.
            None => names::split(exposed).map(|(s, n)| (s.to_string(), n.to_string()))?,
        };
        Some((self.member_named(&server)?, name))
    }

    fn forward(
        &self,
        m: &Member,
        msg: Message,
        direct: Option<Arc<dyn Answerer>>,
    ) -> Result<Reply, String> {
        m.session.upstream.clone().request(&m.session, msg, direct)
    }
}

impl Front for HubSession {
    fn id(&self) -> &str {
        &self.id
    }

    fn version(&self) -> &str {
        &self.version
    }

    fn seen(&self) {
        *lock(&self.last_seen) = Instant::now();
        for m in lock(&self.members).iter() {
            m.session.seen();
        }
    }

    fn request(
        self: Arc<Self>,
        mut msg: Message,
        direct: Option<Arc<dyn Answerer>>,
    ) -> Result<Reply, String> {
        let id = msg.id();
        let method = msg.method().unwrap_or("").to_string();
        let answer = |v: Value| Ok(Reply::Local(Message::from_value(&v)));
        let local = |result: Value| answer(jsonrpc::result(id.clone(), result));
        let error = |code: i64, text: String| answer(jsonrpc::error(id.clone(), code, text));
        match method.as_str() {
            "ping" => local(json!({})),
            "tools/list" | "prompts/list" | "resources/list" | "resources/templates/list" => {
                let text = self.listed(&method);
                let size = self.selection.page_size;
                let cursor = msg.raw_at(&["params", "cursor"]).map(|_| {
                    msg.str_at(&["params", "cursor"])
                        .ok_or_else(|| "invalid cursor: not a string".to_string())
                });
                if cursor.is_none() && size == 0 {
                    // The common case: the whole list, as made.
                    return Ok(Reply::Local(Message::result(&id, &text)));
                }
                let field = lists::list_field(&method);
                let paged = match cursor {
                    None => lists::page(&text, field, None, size),
                    Some(c) => c.and_then(|c| lists::page(&text, field, Some(&c), size)),
                };
                match paged {
                    Ok(page) => local(page),
                    Err(e) => error(jsonrpc::INVALID_PARAMS, e),
                }
            }
            "tools/call" | "prompts/get" => {
                let exposed = msg.str_at(&["params", "name"]).unwrap_or_default();
                let names = if method == "tools/call" {
                    &self.tools
                } else {
                    &self.prompts
                };
                let what = if method == "tools/call" {
                    "tool"
                } else {
                    "prompt"
                };
                let Some((m, name)) = self.resolve(names, &exposed) else {
                    return error(
                        jsonrpc::INVALID_PARAMS,
                        format!("unknown {what}: {exposed}"),
                    );
                };
                if method == "tools/call"
                    && !lock(&self.filter).admits(&names::qualified(&m.server, &name))
                {
                    return error(jsonrpc::INVALID_PARAMS, format!("unknown tool: {exposed}"));
                }
                msg.set_at(&["params", "name"], &json!(name).to_string());
                self.forward(&m, msg, direct)
            }
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                let uri = msg.str_at(&["params", "uri"]).unwrap_or_default();
                let Some((m, original)) = self.owner_of(&uri) else {
                    return error(
                        jsonrpc::INVALID_PARAMS,
                        format!("no server of the hub owns resource {uri}; list resources first"),
                    );
                };
                if original == uri {
                    return self.forward(&m, msg, direct);
                }
                // A rewritten URI: the server gets its own, the client
                // gets back the one it asked for.
                let mut params = msg.value_at(&["params"]).unwrap_or(json!({}));
                params["uri"] = json!(original);
                match self.ask_member(&m, &method, params) {
                    Ok(mut result) => {
                        for c in result["contents"].as_array_mut().into_iter().flatten() {
                            if c["uri"] == json!(original) {
                                c["uri"] = json!(uri);
                            }
                        }
                        local(result)
                    }
                    Err(e) => error(jsonrpc::UNAVAILABLE, e),
                }
            }
            "completion/complete" => {
                let reference = msg.value_at(&["params", "ref"]).unwrap_or(Value::Null);
                let target = match reference["type"].as_str() {
                    Some("ref/prompt") => {
                        let exposed = reference["name"].as_str().unwrap_or("");
                        self.resolve(&self.prompts, exposed).map(|(m, name)| {
                            msg.set_at(&["params", "ref", "name"], &json!(name).to_string());
                            m
                        })
                    }
                    Some("ref/resource") => {
                        let uri = reference["uri"].as_str().unwrap_or("");
                        self.owner_of(uri).map(|(m, original)| {
                            msg.set_at(&["params", "ref", "uri"], &json!(original).to_string());
                            m
                        })
                    }
                    _ => None,
                };
                match target {
                    Some(m) => self.forward(&m, msg, direct),
                    None => error(
                        jsonrpc::INVALID_PARAMS,
                        "no server of the hub owns that reference".into(),
                    ),
                }
            }
            "logging/setLevel" => {
                let level = msg.str_at(&["params", "level"]).unwrap_or_default();
                if crate::mux::session::severity(&level).is_none() {
                    return error(
                        jsonrpc::INVALID_PARAMS,
                        format!("unknown log level {level:?}"),
                    );
                }
                // Each server that logs takes the level; an error only
                // when none does.
                let mut taken = 0;
                for m in self.members() {
                    let copy = Message::from_value(&msg.to_value().unwrap_or(Value::Null));
                    match self.forward(&m, copy, None) {
                        Ok(Reply::Local(a)) if a.raw_at(&["result"]).is_some() => taken += 1,
                        Ok(_) => {}
                        Err(e) => {
                            crate::log!("hub session {}: setLevel on {}: {e}", self.id, m.server)
                        }
                    }
                }
                if taken == 0 {
                    return error(
                        jsonrpc::METHOD_NOT_FOUND,
                        "no server of the hub supports logging".into(),
                    );
                }
                local(json!({}))
            }
            _ => error(
                jsonrpc::METHOD_NOT_FOUND,
                format!("Method not found: the hub does not serve {method}"),
            ),
        }
    }

    fn timed_out(&self, id: &Value) {
        for m in lock(&self.members).iter() {
            if m.session.tracks(id) {
                Front::timed_out(m.session.as_ref(), id);
            }
        }
    }

    fn notification(&self, msg: Message) {
        let members = lock(&self.members).clone();
        if msg.method() == Some("notifications/cancelled") {
            let target = msg
                .value_at(&["params", "requestId"])
                .unwrap_or(Value::Null);
            if let Some(m) = members.iter().find(|m| m.session.tracks(&target)) {
                m.session.deliver_notification(msg);
            }
            return;
        }
        for m in members {
            let copy = Message::from_value(&msg.to_value().unwrap_or(Value::Null));
            m.session.deliver_notification(copy);
        }
    }

    fn response(&self, msg: Message) {
        let members = lock(&self.members).clone();
        for m in members {
            let copy = Message::from_value(&msg.to_value().unwrap_or(Value::Null));
            if m.session.deliver_response(copy) {
                return;
            }
        }
        crate::log!(
            "hub session {}: dropping a response to an unknown request",
            self.id
        );
    }

    fn open_stream(&self, tx: QueueTx<Message>) -> bool {
        let mut stream = lock(&self.stream);
        if stream.is_some() {
            return false;
        }
        for m in lock(&self.members).iter() {
            self.relay(m, tx.clone());
        }
        *stream = Some(tx);
        true
    }

    fn stream_opened(&self) {
        for m in lock(&self.members).iter() {
            m.session.ask_roots_once();
        }
    }

    fn close_stream(&self) {
        lock(&self.stream).take();
        for m in lock(&self.members).iter() {
            m.session.close_stream();
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

impl Daemon {
    /// End hub session `sid` and its member sessions.
    pub fn end_hub(&self, sid: &str, reason: &str) {
        let Some(hub) = lock(&self.hubs).remove(sid) else {
            return;
        };
        self.replay.forget(sid);
        hub.closed.store(true, Ordering::Release);
        let members = std::mem::take(&mut *lock(&hub.members));
        for m in members {
            self.end_session(&m.session.id, reason);
        }
    }

    /// End hub sessions whose client process is gone, or (without one) that
    /// were idle past the session idle time.
    pub(super) fn reap_hubs(&self, idle: Duration) {
        // Lists of upstreams gone are of no use.
        let live: Vec<String> = lock(&self.upstreams).keys().cloned().collect();
        lock(&self.hub_lists).retain(|(id, _), _| live.contains(id));
        let ending: Vec<(String, String)> = lock(&self.hubs)
            .values()
            .filter_map(|h| match &h.client {
                _ if h.stalled.load(Ordering::Acquire) => {
                    Some((h.id.clone(), "its client stopped reading".to_string()))
                }
                Some(c) if !crate::platform::same_process(c) => {
                    Some((h.id.clone(), format!("client process {} exited", c.pid)))
                }
                Some(_) => None,
                None => {
                    let quiet = lock(&h.last_seen).elapsed();
                    let streaming = lock(&h.stream).is_some();
                    (!streaming && quiet >= idle)
                        .then(|| (h.id.clone(), format!("idle for {} s", quiet.as_secs())))
                }
            })
            .collect();
        for (id, why) in ending {
            crate::log!("hub session {id}: {why}; ending it");
            self.end_hub(&id, &why);
        }
    }

    /// The config changed: every hub session takes in the new set.
    pub(super) fn refresh_hubs(&self) {
        let hubs: Vec<Arc<HubSession>> = lock(&self.hubs).values().cloned().collect();
        for h in hubs {
            h.refresh(self);
        }
    }

    /// The names the hub shows for configured server `server`'s tools,
    /// as last seen (the catalog), with the default budget: the names hub
    /// sessions give them (the registry).
    pub fn exposed_tools(&self, server: &str) -> Vec<String> {
        let tools = self.catalog.field(server, "tools");
        let pairs: Vec<(String, String)> = tools
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| Some((server.to_string(), t["name"].as_str()?.to_string())))
            .collect();
        let names = self.names.assign("tools", &pairs, names::DEFAULT_BUDGET);
        pairs
            .iter()
            .filter_map(|(s, n)| names.exposed(s, n).map(str::to_string))
            .collect()
    }

    /// Each hub member session's id → "hub" or "hub, profile P".
    pub fn hub_members(&self) -> HashMap<String, String> {
        let hubs: Vec<Arc<HubSession>> = lock(&self.hubs).values().cloned().collect();
        let mut out = HashMap::new();
        for h in hubs {
            let label = match &h.selection.profile {
                Some(p) => format!("hub {}, profile {p}", &h.id[..h.id.len().min(8)]),
                None => format!("hub {}", &h.id[..h.id.len().min(8)]),
            };
            for m in lock(&h.members).iter() {
                out.insert(m.session.id.clone(), label.clone());
            }
        }
        out
    }

    /// How many hub sessions are open.
    pub fn hub_sessions(&self) -> usize {
        lock(&self.hubs).len()
    }
}
