//! Sharing one upstream among many sessions: identities, sessions, pending
//! calls and the routing of answers, notifications and server requests.

pub mod identity;
pub mod session;
pub mod upstream;
pub mod view;
