//! Entry points for the fuzz targets in `fuzz/` (`make fuzz`): each takes
//! untrusted bytes to a parser the daemon or bridge runs on input it does
//! not control, and checks what must hold whatever the bytes. Not an API;
//! nothing else calls these. Inputs that once failed live in
//! `fuzz/regressions/<target>/`, replayed by this module's test.

use crate::mcp::jsonrpc::{self, LineReader};
use crate::mcp::message::Message;
use crate::net::wire::{self, Chunks, Framing, Side, WireError};
use serde_json::json;
use std::io::{BufReader, Read};

/// The body limit the targets read with.
const MAX_BODY: usize = 64 * 1024;

/// A request head, its framing and its body, as the daemon's server reads
/// them: never a panic; a head within its limits; a body never past its
/// limit, and of the length its head announced.
pub fn http_request(data: &[u8]) {
    let mut r = BufReader::new(data);
    let head = match wire::read_head(&mut r, Side::Request) {
        Ok(Some(head)) => head,
        Ok(None) => return,
        Err(e) => {
            assert!(matches!(e.status(), 400 | 431), "{e}");
            return;
        }
    };
    assert!(head.target().starts_with('/'));
    assert!(!head.method().is_empty());
    match wire::framing(&head, Side::Request) {
        Ok(Framing::Chunked) => match wire::read_chunked(&mut r, MAX_BODY) {
            Ok(body) => assert!(body.len() <= MAX_BODY),
            Err(e) => assert!(matches!(e.status(), 400 | 413), "{e}"),
        },
        Ok(Framing::Length(n)) if n <= MAX_BODY as u64 => {
            let mut body = vec![0; n as usize];
            let _ = r.read_exact(&mut body);
        }
        Ok(Framing::Length(_)) => {}
        Ok(Framing::UntilClose) => panic!("a request read as a response"),
        Err(e) => assert!(matches!(e.status(), 400 | 413), "{e}"),
    }
}

/// A chunked body alone, decoded whole (the server's way) and piece by
/// piece (the client's way): the two agree on the bytes, or both refuse.
pub fn chunked_body(data: &[u8]) {
    let whole = wire::read_chunked(&mut BufReader::new(data), MAX_BODY);
    if let Ok(body) = &whole {
        assert!(body.len() <= MAX_BODY);
    }
    let mut r = BufReader::new(data);
    let mut chunks = Chunks::new();
    let mut streamed = Vec::new();
    let mut buf = [0u8; 7];
    let streamed = loop {
        match chunks.read(&mut r, &mut buf) {
            Ok(0) => break Ok(streamed),
            Ok(n) => {
                streamed.extend_from_slice(&buf[..n]);
                if streamed.len() > MAX_BODY {
                    break Err(WireError::BodyTooLarge);
                }
            }
            Err(e) => break Err(e),
        }
    };
    match (&whole, &streamed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the two decoders read two bodies"),
        (Err(_), Err(_)) => {}
        // Past the limit the whole decoder refuses at the size line, the
        // streamed one only once the bytes are there.
        (Err(WireError::BodyTooLarge), _) | (_, Err(WireError::BodyTooLarge)) => {}
        (a, b) => panic!("the decoders disagree: {a:?} / {b:?}"),
    }
}

/// A reply's head and body as the bridge's hot-path client (`h1`) reads
/// them: never a panic, and a body of known length never longer.
pub fn http_response(data: &[u8]) {
    let mut r = BufReader::new(data);
    let Ok((head, mut rest)) = crate::net::h1::reply_head(&mut r) else {
        return;
    };
    assert!((100..=999).contains(&head.status()));
    let announced = match rest {
        crate::net::h1::Rest::Length(n) => Some(n),
        _ => None,
    };
    let mut got = 0u64;
    let mut buf = [0u8; 512];
    while got <= MAX_BODY as u64 {
        match rest.read(&mut r, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n as u64,
        }
    }
    if let Some(n) = announced {
        assert!(got <= n, "{got} bytes read of {n} announced");
    }
}

/// Lines of JSON-RPC as a bridge or an upstream's reader takes them: every
/// line either parses or not; a parsed message whose id and progress token
/// are rewritten stays a message with the new id; an over-long line's ends
/// are scanned for an id without a panic.
pub fn jsonrpc_lines(data: &[u8]) {
    let mut lines = LineReader::new(BufReader::new(data), 4096);
    while let Ok(Some(line)) = lines.next_line() {
        match line {
            jsonrpc::Line::Text(bytes) => {
                let _ = jsonrpc::scan::first_kind(&bytes);
                let Ok(mut msg) = Message::parse(bytes) else {
                    continue;
                };
                let valid = msg.kind() != jsonrpc::Kind::Invalid;
                let _ = (msg.kind(), msg.method(), msg.id());
                // Only an object has an id to rewrite.
                let object = msg.text().trim_start().starts_with('{');
                msg.set_id(&json!(4242));
                msg.set_at(&["params", "_meta", "progressToken"], "7");
                let again = Message::parse(msg.into_text().into_bytes())
                    .expect("a rewritten message is still JSON");
                if object {
                    assert_eq!(
                        again.id(),
                        json!(4242),
                        "the rewritten id is the one read back"
                    );
                }
                // A message routed at all means one id to every parser:
                // serde_json keeps the last of a repeated key.
                if object
                    && valid
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(again.text())
                {
                    assert_eq!(v["id"], json!(4242), "another parser reads another id");
                }
            }
            jsonrpc::Line::TooLong(_) => {
                let _ = (lines.too_long_id(), lines.too_long_is_response());
            }
        }
    }
}

/// The manifest and a registry record, as read from files another process
/// may have written.
pub fn state_files(data: &[u8]) {
    if let Ok(m) = crate::state::manifest::Manifest::parse(data) {
        assert!(m.validate().is_ok());
    }
    let _ = crate::state::registry::parse(data);
}

/// A target's entry point.
pub type Target = fn(&[u8]);

/// Every target by the name of its `fuzz/fuzz_targets/` file.
pub const TARGETS: &[(&str, Target)] = &[
    ("http_request", http_request),
    ("chunked_body", chunked_body),
    ("http_response", http_response),
    ("jsonrpc_lines", jsonrpc_lines),
    ("state_files", state_files),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Each file in `fuzz/regressions/<target>/` (a crash `make fuzz` once
    /// found, or an input kept as one) runs through its target again: a
    /// panic fails this test and names the file. Every target has one.
    #[test]
    fn fuzz_regressions_replay_without_a_panic() {
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/regressions"));
        let mut failed = Vec::new();
        for (name, target) in TARGETS {
            let dir = root.join(name);
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            assert!(
                !files.is_empty(),
                "no regression input in {}",
                dir.display()
            );
            for file in files {
                let data = std::fs::read(&file).unwrap();
                if std::panic::catch_unwind(|| target(&data)).is_err() {
                    failed.push(file.display().to_string());
                }
            }
        }
        assert!(failed.is_empty(), "targets panicked on: {failed:#?}");
        let dirs = std::fs::read_dir(root).unwrap().count();
        assert_eq!(
            dirs,
            TARGETS.len(),
            "a directory in {} names no target",
            root.display()
        );
    }
}
