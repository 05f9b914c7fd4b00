//! Integration tests: the real binary, a temp MCPSHARE_HOME each, the
//! fixture server, loopback only, every wait bounded.
#![allow(clippy::zombie_processes)]

mod common;

mod asking;
mod bridge;
mod bytes;
mod cli;
mod clients;
mod config;
mod console;
mod daemon;
mod doctor;
mod election;
mod hub;
mod identity;
mod list_changed;
mod names;
mod orphans;
mod portability;
mod processes;
mod promise;
mod reattach;
mod remote;
mod resume;
mod roots;
mod routing;
mod security;
mod servers;
mod supervision;
mod upstream;
mod words;
