//! `mcpshare remote [--sse] URL`: internal, not in `--help`. The daemon
//! runs it as the upstream of a remote server of the config, with the
//! server's headers in MCPSHARE_REMOTE_HEADERS (see the remote module).

use super::Invocation;
use crate::error::{Error, Result};
use crate::remote::{self, Remote, Transport};

/// `remote`'s arguments; nothing runs.
pub fn parse(parser: &mut lexopt::Parser) -> Result<Invocation> {
    use lexopt::prelude::*;
    let (mut sse, mut url) = (false, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("sse") => sse = true,
            Value(v) if url.is_none() => url = Some(v.string()?),
            Long("help") | Short('h') => return Err(Error::Usage(INTERNAL.into())),
            other => return Err(other.unexpected().into()),
        }
    }
    let url = url.ok_or_else(|| Error::Usage(format!("remote needs a URL; {INTERNAL}")))?;
    Ok(Invocation::Remote { url, sse })
}

const INTERNAL: &str = "'mcpshare remote [--sse] URL' is internal: the daemon runs it for a \
                        remote server of the config (see mcpshare(1), CONFIGURED SERVERS)";

/// Relay stdio to the server at `url` until stdin ends; the exit status.
pub fn run(url: String, sse: bool) -> Result<i32> {
    let headers = match std::env::var(remote::HEADERS_VAR) {
        Ok(text) => remote::parse_headers(&text).map_err(Error::Usage)?,
        Err(_) => Default::default(),
    };
    Ok(remote::run(Remote {
        url,
        transport: if sse { Transport::Sse } else { Transport::Http },
        headers,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::{Invocation, parse};

    #[test]
    fn remote_parses_but_is_not_in_help() {
        assert_eq!(
            parse(["remote", "--sse", "http://h/sse"]).unwrap(),
            Invocation::Remote {
                url: "http://h/sse".into(),
                sse: true
            }
        );
        assert!(parse(["remote"]).is_err());
        assert!(parse(["remote", "http://a", "http://b"]).is_err());
        assert!(!super::super::help().contains("mcpshare remote"));
    }
}
