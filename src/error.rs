//! The one error type of mcpshare. Messages are lowercase, name the path or
//! pid involved, and carry a hint line where the fix is known.

use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    /// An I/O error on a named path.
    Path(PathBuf, io::Error),
    /// Any other I/O error, with what was being done.
    Io(String, io::Error),
    /// The home directory is unsafe to use (wrong owner, for example).
    UnsafeHome(PathBuf, String),
    /// The daemon could not be started or reached before the deadline.
    DaemonUnavailable { reason: String, log_tail: String },
    /// A daemon holds the lock but does not answer.
    DaemonHung { pid: u32, why: String },
    /// A daemon of an incompatible protocol is running.
    Incompatible {
        pid: u32,
        version: String,
        protocol: u32,
        /// The control protocol this mcpshare speaks.
        ours: u32,
    },
    /// Another daemon already holds the lock (for `mcpshare daemon`).
    AlreadyRunning,
    /// The daemon answered with an HTTP or protocol error.
    Daemon(String),
    /// Bad command-line usage.
    Usage(String),
    /// The config file, one of its servers, or a server's source directory
    /// is wrong; nothing was written.
    Config(ConfigError),
}

/// A problem with the config file (see mcpshare(1) FILES): the file, the
/// server, the position when known (line 0 = none), and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    pub server: Option<String>,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if let Some(s) = &self.server {
            write!(f, ": server '{s}'")?;
        }
        write!(f, ": {}", self.message)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(what: impl Into<String>, e: io::Error) -> Error {
        Error::Io(what.into(), e)
    }

    /// The exit status documented under EXIT STATUS in mcpshare(1).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::AlreadyRunning => 3,
            Error::DaemonHung { .. } | Error::Incompatible { .. } => 4,
            _ => 1,
        }
    }

    /// A second line telling the user what to run, where we know it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::DaemonUnavailable { .. } => Some(
                "run 'mcpshare daemon' in a terminal to see why it does not start".to_string(),
            ),
            Error::DaemonHung { pid, .. } => Some(format!(
                "daemon pid {pid} holds the lock but does not answer; run 'mcpshare stop --force'"
            )),
            Error::Incompatible { .. } => Some(
                "stop it with 'mcpshare stop' (its clients will reconnect), or use the mcpshare that started it"
                    .to_string(),
            ),
            Error::AlreadyRunning => Some("see it with 'mcpshare status'".to_string()),
            Error::Usage(_) => Some("see 'mcpshare --help'".to_string()),
            Error::UnsafeHome(..) => Some("'mcpshare doctor' prints the fix".to_string()),
            Error::Config(c) => c.hint.clone(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Path(p, e) => write!(f, "{}: {}", p.display(), lower(e)),
            Error::Io(what, e) => write!(f, "{what}: {}", lower(e)),
            Error::UnsafeHome(p, why) => write!(f, "unsafe home directory {}: {why}", p.display()),
            Error::DaemonUnavailable { reason, log_tail } => {
                write!(f, "cannot start the daemon: {reason}")?;
                if !log_tail.is_empty() {
                    write!(f, "\nlast lines of the daemon log:\n{log_tail}")?;
                }
                Ok(())
            }
            Error::DaemonHung { pid, why } => {
                write!(
                    f,
                    "daemon pid {pid} holds the lock but is not responding: {why}"
                )
            }
            Error::Incompatible {
                pid,
                version,
                protocol,
                ours,
            } => write!(
                f,
                "daemon pid {pid} (mcpshare {version}) speaks control protocol {protocol}, \
                 this mcpshare speaks {ours}"
            ),
            Error::AlreadyRunning => write!(f, "another daemon holds the lock for this home"),
            Error::Daemon(msg) => write!(f, "{msg}"),
            Error::Usage(msg) => write!(f, "{msg}"),
            Error::Config(c) => write!(f, "{c}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Error {
        Error::Config(e)
    }
}

impl From<lexopt::Error> for Error {
    fn from(e: lexopt::Error) -> Error {
        Error::Usage(e.to_string())
    }
}

/// io::Error's Display starts with a capital and ends with "(os error N)";
/// keep the house style of lowercase messages.
fn lower(e: &io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => s,
    }
}
