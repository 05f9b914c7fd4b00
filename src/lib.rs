//! mcpshare: one durable per-user daemon owns the MCP servers, and every
//! MCP client's stdio is bridged to it. See mcpshare(1).
#![deny(unsafe_code)]

pub mod log;

pub mod bridge;
pub mod cli;
pub mod client;
pub mod daemon;
pub mod doctor;
pub mod election;
pub mod endpoint;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod h1;
pub mod home;
pub mod http;
pub mod identity;
pub mod jsonrpc;
pub mod lock;
pub mod logbook;
pub mod manifest;
pub mod message;
pub mod pool;
pub mod registry;
pub mod session;
pub mod sys;
pub mod upstream;
