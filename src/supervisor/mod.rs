//! An MCP server's child process: spawning, the stdin writer, reaping with
//! signals to its group, the rules of its lifecycle (phases, crash window,
//! backoff, health), and its logbook of stderr and exits. Knows nothing of
//! sessions or of what the messages mean.

pub mod child;
pub mod lifecycle;
pub mod logbook;
