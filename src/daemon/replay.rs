//! Resumable SSE streams (Streamable HTTP's `Last-Event-ID`): what the MCP
//! endpoints write on a session's SSE streams is kept here, bounded per
//! stream, so a client that lost a connection gets what followed the last
//! event it saw, and the answer to a call whose client went away is kept
//! for its reconnect. Never waits on a client; never grows past its bounds.

use crate::pool::lock;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The `retry:` a priming event gives: how long a client waits before it
/// reconnects to a stream that ended without its answer.
pub const RETRY_MS: u64 = 1000;
/// Events kept per stream; older ones are dropped first.
pub const STREAM_EVENTS_MAX: usize = 256;
/// Bytes of event data kept per stream; older events are dropped first
/// (the newest is always kept, whatever its size).
pub const STREAM_BYTES_MAX: usize = 1024 * 1024;
/// How long a stream stays resumable after it ended (its answer written,
/// or its GET connection closed).
pub const STREAM_KEEP: Duration = Duration::from_secs(5 * 60);
/// Streams kept per session; past this, ended streams go first, oldest
/// first (streams still in flight are never dropped).
pub const STREAMS_MAX: usize = 64;
/// The key of a session's GET stream; POST streams are `p1`, `p2`, ...
pub const GET_KEY: &str = "g";

/// The first protocol version whose SSE streams begin with a priming event.
const PRIMING_SINCE: &str = "2025-11-25";

/// Does a session of this protocol version get priming events? (Dates
/// compare as strings.)
pub fn primes(version: &str) -> bool {
    version >= PRIMING_SINCE
}

/// An event id: the stream's key and the event's position in it.
pub fn event_id(key: &str, seq: u64) -> String {
    format!("{key}/{seq}")
}

/// `Last-Event-ID` as a stream key and position, if it is one of ours.
pub fn parse_event_id(text: &str) -> Option<(String, u64)> {
    let (key, seq) = text.trim().rsplit_once('/')?;
    let valid_key = key == GET_KEY
        || key
            .strip_prefix('p')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !valid_key {
        return None;
    }
    Some((key.to_string(), seq.parse().ok()?))
}

/// The streams of every session that has had one, by session id.
#[derive(Default)]
pub struct Store {
    sessions: Mutex<HashMap<String, Arc<Streams>>>,
}

impl Store {
    /// Session `sid`'s streams, created on first use. Creating one also
    /// forgets sessions with nothing left to resume.
    pub fn of(&self, sid: &str) -> Arc<Streams> {
        let mut map = lock(&self.sessions);
        if let Some(s) = map.get(sid) {
            return s.clone();
        }
        let now = Instant::now();
        map.retain(|_, s| !s.expired(now));
        let s = Arc::new(Streams::default());
        map.insert(sid.to_string(), s.clone());
        s
    }

    /// Session `sid` ended: nothing of it is resumable any more.
    pub fn forget(&self, sid: &str) {
        if let Some(s) = lock(&self.sessions).remove(sid) {
            s.close_all();
        }
    }
}

/// One session's streams.
pub struct Streams {
    inner: Mutex<Inner>,
    /// Signalled on every event, end and take-over.
    changed: Condvar,
    /// A session's streams are kept at least this long, streams or not:
    /// one just created is not swept before its first stream opens.
    created: Instant,
}

impl Default for Streams {
    fn default() -> Streams {
        Streams {
            inner: Mutex::default(),
            changed: Condvar::new(),
            created: Instant::now(),
        }
    }
}

#[derive(Default)]
struct Inner {
    next_post: u64,
    next_writer: u64,
    streams: HashMap<String, Stream>,
}

struct Stream {
    /// (position, data), oldest first.
    events: VecDeque<(u64, String)>,
    bytes: usize,
    /// The last position handed out (an event's or a priming event's).
    last: u64,
    ended: Option<Instant>,
    /// Who writes it now: 0 its own connection, else the reconnect that
    /// took it over.
    writer: u64,
    opened: Instant,
}

impl Stream {
    fn new() -> Stream {
        Stream {
            events: VecDeque::new(),
            bytes: 0,
            last: 0,
            ended: None,
            writer: 0,
            opened: Instant::now(),
        }
    }
}

/// What a stream has for a reader past its position.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Events past the position, oldest first: (position, data).
    Events(Vec<(u64, String)>),
    /// Ended, and the reader has had everything.
    Ended,
    /// A later reconnect took the stream over.
    Replaced,
    /// Nothing new within the wait.
    Idle,
}

/// Why a `Last-Event-ID` cannot be resumed.
#[derive(Debug, PartialEq)]
pub enum Refused {
    /// No such stream in this session (never, or no longer, kept).
    Unknown,
}

impl Streams {
    fn expired(&self, now: Instant) -> bool {
        if now.saturating_duration_since(self.created) < STREAM_KEEP {
            return false;
        }
        let inner = lock(&self.inner);
        inner.streams.values().all(|s| {
            s.ended
                .is_some_and(|t| now.saturating_duration_since(t) >= STREAM_KEEP)
        })
    }

    fn close_all(&self) {
        let mut inner = lock(&self.inner);
        let now = Instant::now();
        for s in inner.streams.values_mut() {
            s.ended.get_or_insert(now);
        }
        drop(inner);
        self.changed.notify_all();
    }

    /// A new POST stream: its key.
    pub fn open_post(&self) -> String {
        let mut inner = lock(&self.inner);
        inner.next_post += 1;
        let key = format!("p{}", inner.next_post);
        inner.streams.insert(key.clone(), Stream::new());
        evict(&mut inner, Instant::now());
        key
    }

    /// The GET stream (re)opens on a new connection, which writes it.
    pub fn open_get(&self) {
        let mut inner = lock(&self.inner);
        let s = inner
            .streams
            .entry(GET_KEY.to_string())
            .or_insert_with(Stream::new);
        s.ended = None;
        s.writer = 0;
        evict(&mut inner, Instant::now());
    }

    /// A position for a priming event: a resume from it replays what
    /// follows it.
    pub fn prime(&self, key: &str) -> u64 {
        let mut inner = lock(&self.inner);
        match inner.streams.get_mut(key) {
            Some(s) => {
                s.last += 1;
                s.last
            }
            None => 0,
        }
    }

    /// Keep an event of stream `key` written by `writer`: its position, and
    /// whether `writer` still writes the stream (else a reconnect took it
    /// over and delivers the event).
    pub fn push(&self, key: &str, data: &str, writer: u64) -> (u64, bool) {
        let mut inner = lock(&self.inner);
        let Some(s) = inner.streams.get_mut(key) else {
            return (0, true);
        };
        s.last += 1;
        let seq = s.last;
        s.bytes += data.len();
        s.events.push_back((seq, data.to_string()));
        while s.events.len() > 1
            && (s.events.len() > STREAM_EVENTS_MAX || s.bytes > STREAM_BYTES_MAX)
        {
            if let Some((_, old)) = s.events.pop_front() {
                s.bytes -= old.len();
            }
        }
        let mine = s.writer == writer;
        drop(inner);
        self.changed.notify_all();
        (seq, mine)
    }

    /// Stream `key` has nothing more to come.
    pub fn end(&self, key: &str) {
        if let Some(s) = lock(&self.inner).streams.get_mut(key) {
            s.ended = Some(Instant::now());
        }
        self.changed.notify_all();
    }

    /// A reconnect resumes stream `key` after position `after`: it writes
    /// the stream from now on (its token), or the id is not resumable.
    pub fn take_over(&self, key: &str, after: u64) -> Result<u64, Refused> {
        let mut inner = lock(&self.inner);
        inner.next_writer += 1;
        let token = inner.next_writer;
        let s = inner.streams.get_mut(key).ok_or(Refused::Unknown)?;
        if after > s.last {
            return Err(Refused::Unknown);
        }
        s.writer = token;
        drop(inner);
        self.changed.notify_all();
        Ok(token)
    }

    /// Is `after` a position stream `key` has handed out?
    pub fn knows(&self, key: &str, after: u64) -> bool {
        lock(&self.inner)
            .streams
            .get(key)
            .is_some_and(|s| after <= s.last)
    }

    /// The events of stream `key` past `after` that are still kept.
    pub fn after(&self, key: &str, after: u64) -> Vec<(u64, String)> {
        let inner = lock(&self.inner);
        inner.streams.get(key).map_or_else(Vec::new, |s| {
            s.events
                .iter()
                .filter(|(seq, _)| *seq > after)
                .cloned()
                .collect()
        })
    }

    /// For the reconnect holding `token`: what stream `key` has past
    /// `after`, waiting at most `wait` for something.
    pub fn next(&self, key: &str, after: u64, token: u64, wait: Duration) -> Next {
        let deadline = Instant::now() + wait;
        let mut inner = lock(&self.inner);
        loop {
            let Some(s) = inner.streams.get(key) else {
                return Next::Ended;
            };
            if s.writer != token {
                return Next::Replaced;
            }
            let events: Vec<(u64, String)> = s
                .events
                .iter()
                .filter(|(seq, _)| *seq > after)
                .cloned()
                .collect();
            if !events.is_empty() {
                return Next::Events(events);
            }
            if s.ended.is_some() {
                return Next::Ended;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Next::Idle;
            }
            inner = match self.changed.wait_timeout(inner, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

/// Keep at most [`STREAMS_MAX`] streams, and none ended longer ago than
/// [`STREAM_KEEP`]: the oldest ended ones go first.
fn evict(inner: &mut Inner, now: Instant) {
    inner.streams.retain(|_, s| {
        s.ended
            .is_none_or(|t| now.saturating_duration_since(t) < STREAM_KEEP)
    });
    while inner.streams.len() > STREAMS_MAX {
        let oldest = inner
            .streams
            .iter()
            .filter(|(_, s)| s.ended.is_some())
            .min_by_key(|(_, s)| s.opened)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => inner.streams.remove(&k),
            None => break,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_name_a_stream_and_a_position() {
        assert_eq!(event_id("p3", 7), "p3/7");
        assert_eq!(parse_event_id("p3/7"), Some(("p3".into(), 7)));
        assert_eq!(parse_event_id("g/0"), Some(("g".into(), 0)));
        for bad in ["", "p3", "p/1", "x1/2", "p3/-1", "p3/x", "p1a/2", "g"] {
            assert_eq!(parse_event_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn priming_is_for_2025_11_25_and_later() {
        assert!(primes("2025-11-25"));
        assert!(!primes("2025-06-18"));
        assert!(!primes("2025-03-26"));
    }

    #[test]
    fn a_stream_keeps_its_newest_events_within_its_bounds() {
        let s = Streams::default();
        let key = s.open_post();
        assert_eq!(s.prime(&key), 1);
        for n in 0..STREAM_EVENTS_MAX + 10 {
            s.push(&key, &format!("e{n}"), 0);
        }
        let kept = s.after(&key, 0);
        assert_eq!(kept.len(), STREAM_EVENTS_MAX);
        assert_eq!(
            kept.last().unwrap().1,
            format!("e{}", STREAM_EVENTS_MAX + 9)
        );
        assert_eq!(kept.first().unwrap().1, "e10");
        // One huge event is kept alone.
        let big = "x".repeat(STREAM_BYTES_MAX + 1);
        s.push(&key, &big, 0);
        assert_eq!(s.after(&key, 0).len(), 1);
    }

    #[test]
    fn a_reconnect_takes_a_stream_over_and_reads_it_to_its_end() {
        let s = Arc::new(Streams::default());
        let key = s.open_post();
        let (first, mine) = s.push(&key, "a", 0);
        assert!(mine);
        assert_eq!(s.take_over(&key, 99), Err(Refused::Unknown));
        assert_eq!(s.take_over("p9", 0), Err(Refused::Unknown));
        let token = s.take_over(&key, first).unwrap();
        let (second, mine) = s.push(&key, "b", 0);
        assert!(!mine, "the old connection no longer writes");
        let wait = Duration::from_millis(10);
        assert_eq!(
            s.next(&key, first, token, wait),
            Next::Events(vec![(second, "b".into())])
        );
        assert_eq!(s.next(&key, second, token, wait), Next::Idle);
        s.end(&key);
        assert_eq!(s.next(&key, second, token, wait), Next::Ended);
        let later = s.take_over(&key, first).unwrap();
        assert_eq!(s.next(&key, first, token, wait), Next::Replaced);
        assert_ne!(later, token);
    }

    #[test]
    fn ended_streams_go_first_when_a_session_has_too_many() {
        let s = Streams::default();
        let live = s.open_post();
        for _ in 0..STREAMS_MAX + 5 {
            let k = s.open_post();
            s.end(&k);
        }
        assert!(s.knows(&live, 0), "a stream in flight is never dropped");
        assert!(!s.knows("p2", 0), "the oldest ended stream went first");
        assert_eq!(lock(&s.inner).streams.len(), STREAMS_MAX);
    }
}
