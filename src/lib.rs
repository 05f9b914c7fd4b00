//! mcpshare: one durable per-user daemon owns the MCP servers, and every
//! MCP client's stdio is bridged to it. See mcpshare(1).
//!
//! Layers, bottom up (a folder never imports one above it): `platform`,
//! `state`, `net` and `mcp`, `supervisor`, `mux`, `daemon` and `bridge`
//! (with `election` between them), `orphans` and `doctor`, `cli`.
#![deny(unsafe_code)]

pub mod error;
pub mod hash;
pub mod log;
pub mod pool;

pub mod platform;

pub mod state;

pub mod config;

pub mod clients;

pub mod mcp;
pub mod net;

pub mod supervisor;

pub mod mux;

pub mod console;
pub mod daemon;

pub mod bridge;
pub mod election;
pub mod remote;

pub mod orphans;

pub mod doctor;

pub mod cli;

#[doc(hidden)]
pub mod fuzzing;
