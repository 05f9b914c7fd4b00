//! Every `MCPSHARE_*` setting of the daemon: one table (variable, unit,
//! default, range) read and checked once into [`Settings`], which is passed
//! down; a client that starts a daemon passes the same variables on.
//! Never reads a variable outside this table for a daemon setting.

use crate::error::{Error, Result};
use crate::log;
use std::time::Duration;

/// The unit a setting's whole number counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Secs,
    Millis,
    Bytes,
}

/// One daemon setting: a whole number of `unit` in `MCPSHARE_*` variable
/// `var`, within `min..=max` (documented under ENVIRONMENT in mcpshare(1)).
/// Unset or empty means `default`; anything else outside the range is an
/// error, so that a typo never runs a daemon on a silent default.
#[derive(Debug)]
pub struct Setting {
    pub var: &'static str,
    pub unit: Unit,
    pub default: u64,
    pub min: u64,
    pub max: u64,
}

pub const MAX_MESSAGE: Setting = Setting {
    var: "MCPSHARE_MAX_MESSAGE_BYTES",
    unit: Unit::Bytes,
    default: crate::mcp::jsonrpc::DEFAULT_MAX_MESSAGE as u64,
    min: 1024,
    max: 1 << 30,
};
pub const START_TIMEOUT: Setting = Setting {
    var: "MCPSHARE_START_TIMEOUT_SECS",
    unit: Unit::Secs,
    default: 60,
    min: 1,
    max: 3600,
};
pub const REQUEST_TIMEOUT: Setting = Setting {
    var: "MCPSHARE_REQUEST_TIMEOUT_SECS",
    unit: Unit::Secs,
    default: 600,
    min: 1,
    max: 86_400,
};
/// 0 turns health pings off.
pub const PING_EVERY: Setting = Setting {
    var: "MCPSHARE_PING_EVERY_MS",
    unit: Unit::Millis,
    default: 30_000,
    min: 0,
    max: 3_600_000,
};
/// An upstream with no session for this long is stopped.
pub const UPSTREAM_IDLE: Setting = Setting {
    var: "MCPSHARE_UPSTREAM_IDLE_MS",
    unit: Unit::Millis,
    default: 30_000,
    min: 0,
    max: 86_400_000,
};
/// The daemon exits after this long with no upstream and no session; 0 never.
pub const DAEMON_IDLE: Setting = Setting {
    var: "MCPSHARE_DAEMON_IDLE_SECS",
    unit: Unit::Secs,
    default: 600,
    min: 0,
    max: 604_800,
};
/// How long a client may take to send a request's head, from its first
/// byte (or from connecting, for a connection's first request).
pub const HEAD_TIMEOUT: Setting = Setting {
    var: "MCPSHARE_HEAD_TIMEOUT_MS",
    unit: Unit::Millis,
    default: 10_000,
    min: 100,
    max: 600_000,
};
/// How long a client may take to send a request's body, once its head is in.
pub const BODY_TIMEOUT: Setting = Setting {
    var: "MCPSHARE_BODY_TIMEOUT_MS",
    unit: Unit::Millis,
    default: 30_000,
    min: 100,
    max: 3_600_000,
};

/// `daemon.log` and upstream logs rotate past this size.
pub const LOG_MAX_BYTES: Setting = Setting {
    var: "MCPSHARE_LOG_MAX_BYTES",
    unit: Unit::Bytes,
    default: log::DEFAULT_LOG_MAX_BYTES,
    min: log::MIN_LOG_MAX_BYTES,
    max: 1 << 40,
};

/// A session of a plain HTTP client (no bridge process named) with no GET
/// stream and nothing in flight ends after this long without a request.
pub const SESSION_IDLE: Setting = Setting {
    var: "MCPSHARE_SESSION_IDLE_SECS",
    unit: Unit::Secs,
    default: 1800,
    min: 1,
    max: 604_800,
};

/// Every daemon setting; a client that starts the daemon passes these on.
pub const SETTINGS: &[&Setting] = &[
    &LOG_MAX_BYTES,
    &SESSION_IDLE,
    &MAX_MESSAGE,
    &START_TIMEOUT,
    &REQUEST_TIMEOUT,
    &PING_EVERY,
    &UPSTREAM_IDLE,
    &DAEMON_IDLE,
    &HEAD_TIMEOUT,
    &BODY_TIMEOUT,
];

impl Setting {
    /// The value of `raw` (the variable's value, if set), checked.
    pub fn parse(&self, raw: Option<&std::ffi::OsStr>) -> Result<u64> {
        let Some(raw) = raw.filter(|v| !v.is_empty()) else {
            return Ok(self.default);
        };
        let text = raw.to_string_lossy();
        let unit = match self.unit {
            Unit::Secs => "seconds",
            Unit::Millis => "milliseconds",
            Unit::Bytes => "bytes",
        };
        // Digits only: no sign, no fraction, no exponent, no spaces.
        let n = Some(&*text)
            .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u64>().ok())
            .filter(|n| (self.min..=self.max).contains(n));
        n.ok_or_else(|| {
            Error::Usage(format!(
                "bad setting {}={text}: want a whole number of {unit} from {} to {}",
                self.var, self.min, self.max
            ))
        })
    }

    /// The value from the environment, checked.
    pub fn read(&self) -> Result<u64> {
        self.parse(std::env::var_os(self.var).as_deref())
    }

    pub fn duration(&self) -> Result<Duration> {
        let n = self.read()?;
        Ok(match self.unit {
            Unit::Millis => Duration::from_millis(n),
            _ => Duration::from_secs(n),
        })
    }

    fn default_duration(&self) -> Duration {
        match self.unit {
            Unit::Millis => Duration::from_millis(self.default),
            _ => Duration::from_secs(self.default),
        }
    }
}

/// The daemon's settings, read and checked once before it starts.
pub struct Settings {
    pub max_message: usize,
    pub start_timeout: Duration,
    pub request_timeout: Duration,
    pub ping_every: Duration,
    pub upstream_idle: Duration,
    pub daemon_idle: Duration,
    pub head_timeout: Duration,
    pub body_timeout: Duration,
    pub log_max_bytes: u64,
    pub session_idle: Duration,
}

impl Settings {
    /// Every setting from the environment; the first bad one is an error
    /// naming its variable and value.
    pub fn from_env() -> Result<Settings> {
        Ok(Settings {
            max_message: MAX_MESSAGE.read()? as usize,
            start_timeout: START_TIMEOUT.duration()?,
            request_timeout: REQUEST_TIMEOUT.duration()?,
            ping_every: PING_EVERY.duration()?,
            upstream_idle: UPSTREAM_IDLE.duration()?,
            daemon_idle: DAEMON_IDLE.duration()?,
            head_timeout: HEAD_TIMEOUT.duration()?,
            body_timeout: BODY_TIMEOUT.duration()?,
            log_max_bytes: LOG_MAX_BYTES.read()?,
            session_idle: SESSION_IDLE.duration()?,
        })
    }
}

/// How long a forwarded request may take (MCPSHARE_REQUEST_TIMEOUT_SECS),
/// for a client's own bounds. A bad value counts as the default here, said
/// once on stderr: the daemon refuses it, and a client starting one fails
/// (see election).
pub fn request_timeout() -> Duration {
    static WARNED: std::sync::Once = std::sync::Once::new();
    client_setting(&REQUEST_TIMEOUT, &WARNED)
}

/// How long an upstream may take to start (MCPSHARE_START_TIMEOUT_SECS);
/// a bad value counts as the default, as for [`request_timeout`].
pub fn start_timeout() -> Duration {
    static WARNED: std::sync::Once = std::sync::Once::new();
    client_setting(&START_TIMEOUT, &WARNED)
}

fn client_setting(setting: &Setting, warned: &std::sync::Once) -> Duration {
    setting.duration().unwrap_or_else(|e| {
        warned.call_once(|| log!("{e}; this client's own wait uses the default"));
        setting.default_duration()
    })
}

/// A bridge's setting in milliseconds (MCPSHARE_WATCHDOG_MS): a bad value
/// falls back to `default`, and says so on stderr, since a running client
/// has nowhere better to report it.
pub fn env_millis(name: &str, default: Duration) -> Duration {
    match std::env::var(name) {
        Err(_) => default,
        Ok(v) if v.is_empty() => default,
        Ok(v) => v.parse().map(Duration::from_millis).unwrap_or_else(|_| {
            log!(
                "ignoring {name}={v}: not a whole number of milliseconds; using {}",
                default.as_millis()
            );
            default
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_take_whole_numbers_in_range_and_name_bad_ones() {
        let parse = |raw: Option<&str>| REQUEST_TIMEOUT.parse(raw.map(std::ffi::OsStr::new));
        assert_eq!(parse(None).unwrap(), 600);
        assert_eq!(parse(Some("")).unwrap(), 600);
        assert_eq!(parse(Some("1")).unwrap(), 1);
        assert_eq!(parse(Some("86400")).unwrap(), 86_400);
        for bad in [
            "abc",
            "-5",
            "+5",
            " 5",
            "1.5",
            "1e3",
            "0",
            "86401",
            "99999999999999999999",
        ] {
            let e = parse(Some(bad)).unwrap_err().to_string();
            assert!(
                e.contains(&format!("MCPSHARE_REQUEST_TIMEOUT_SECS={bad}"))
                    && e.contains("1 to 86400"),
                "{bad}: {e}"
            );
        }
        assert_eq!(DAEMON_IDLE.parse(Some("0".as_ref())).unwrap(), 0);
    }
}
