//! Entry points for the fuzz targets in `fuzz/` (`make fuzz`): each takes
//! untrusted bytes to a parser the daemon or bridge runs on input it does
//! not control, and checks what must hold whatever the bytes. Not an API;
//! nothing else calls these.

use crate::mcp::jsonrpc::{self, LineReader};
use crate::mcp::message::Message;
use serde_json::json;
use std::io::BufReader;

/// A request head, its framing and its body, as the daemon's server reads
/// them: never a panic, and a body never past its limit.
pub fn http_request(data: &[u8]) {
    const MAX: usize = 64 * 1024;
    let mut r = BufReader::new(data);
    let Ok(Some(head)) = crate::net::http::read_head(&mut r) else {
        return;
    };
    match crate::net::http::framing(&head) {
        Ok(crate::net::http::Framing::Chunked) => {
            if let Ok(body) = crate::net::http::read_chunked(&mut r, MAX) {
                assert!(body.len() <= MAX);
            }
        }
        Ok(crate::net::http::Framing::Length(_)) | Err(_) => {}
    }
}

/// A chunked body alone.
pub fn chunked_body(data: &[u8]) {
    const MAX: usize = 64 * 1024;
    if let Ok(body) = crate::net::http::read_chunked(&mut BufReader::new(data), MAX) {
        assert!(body.len() <= MAX);
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
