//! An MCP server's child process: its logbook of stderr and exits.

pub mod logbook;
