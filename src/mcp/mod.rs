//! JSON-RPC and MCP rules with no I/O: classifying lines, reading and
//! splicing ids and progress tokens without re-serialising a message.

pub mod jsonrpc;
pub mod message;
