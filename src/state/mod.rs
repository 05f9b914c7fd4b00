//! What mcpshare keeps on disk under its home: the directory itself, locks,
//! the daemon's manifest and the process registry. Never signals a process
//! and never speaks HTTP.

pub mod home;
pub mod lock;
pub mod manifest;
pub mod registry;
pub mod settings;
pub mod version;
