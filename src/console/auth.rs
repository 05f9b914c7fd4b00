//! The console's credentials, all in memory so that none outlives the
//! daemon start that issued it: one-time login codes (single use, short
//! lived), cookie sessions (each with its CSRF token), compared in constant
//! time. It never sees the MCP endpoints' bearer token.

use crate::net::http::constant_time_eq;
use std::time::{Duration, Instant};

/// How long a login code printed by `mcpshare console` stays valid.
pub const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// How long a console cookie (and its CSRF token) stays valid.
pub const COOKIE_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Codes not yet used, at most; minting one more forgets the oldest.
const MAX_CODES: usize = 16;
/// Cookie sessions alive at once, at most; one more logs out the oldest.
const MAX_SESSIONS: usize = 16;

/// A fresh secret: 32 random bytes as 64 hex digits.
pub fn secret() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    crate::platform::random_bytes(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

struct Code {
    code: String,
    expires: Instant,
}

/// A logged-in browser: the cookie's value and the CSRF token the page
/// must echo in a header on every state-changing request.
#[derive(Clone, Debug, PartialEq)]
pub struct Login {
    pub cookie: String,
    pub csrf: String,
    pub expires: Instant,
}

/// Why a credential was refused, for the answer's body (never the secret).
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    NoCookie,
    UnknownCookie,
    Expired,
    NoCsrf,
    WrongCsrf,
    BadCode,
}

impl Refused {
    pub fn message(&self) -> &'static str {
        match self {
            Refused::NoCookie => "not logged in: open the URL 'mcpshare console' prints",
            Refused::UnknownCookie => {
                "this login is not from this daemon's start: run 'mcpshare console' again"
            }
            Refused::Expired => "this login expired: run 'mcpshare console' again",
            Refused::NoCsrf => "missing X-CSRF-Token header",
            Refused::WrongCsrf => "wrong X-CSRF-Token header",
            Refused::BadCode => {
                "this login code is unknown, used or expired: run 'mcpshare console' again"
            }
        }
    }
}

#[derive(Default)]
pub struct Auth {
    codes: Vec<Code>,
    logins: Vec<Login>,
}

impl Auth {
    /// Remember a code minted by the caller, valid from `now`.
    pub fn add_code(&mut self, code: String, now: Instant) {
        self.codes.retain(|c| c.expires > now);
        if self.codes.len() >= MAX_CODES {
            self.codes.remove(0);
        }
        self.codes.push(Code {
            code,
            expires: now + CODE_LIFETIME,
        });
    }

    /// Exchange a code for a login: the code is gone afterwards, used or
    /// not; `cookie` and `csrf` are fresh secrets from the caller.
    pub fn redeem(
        &mut self,
        code: &str,
        now: Instant,
        cookie: String,
        csrf: String,
    ) -> Result<Login, Refused> {
        self.codes.retain(|c| c.expires > now);
        let mut found = None;
        for (i, c) in self.codes.iter().enumerate() {
            if constant_time_eq(c.code.as_bytes(), code.as_bytes()) {
                found = Some(i);
            }
        }
        let Some(i) = found else {
            return Err(Refused::BadCode);
        };
        self.codes.remove(i);
        self.logins.retain(|l| l.expires > now);
        if self.logins.len() >= MAX_SESSIONS {
            self.logins.remove(0);
        }
        let login = Login {
            cookie,
            csrf,
            expires: now + COOKIE_LIFETIME,
        };
        self.logins.push(login.clone());
        Ok(login)
    }

    /// The login a cookie value belongs to.
    pub fn login(&self, cookie: Option<&str>, now: Instant) -> Result<Login, Refused> {
        let cookie = cookie.ok_or(Refused::NoCookie)?;
        let mut found = None;
        for l in &self.logins {
            if constant_time_eq(l.cookie.as_bytes(), cookie.as_bytes()) {
                found = Some(l);
            }
        }
        let l = found.ok_or(Refused::UnknownCookie)?;
        if l.expires <= now {
            return Err(Refused::Expired);
        }
        Ok(l.clone())
    }

    /// The login, if the CSRF token matches it too.
    pub fn login_with_csrf(
        &self,
        cookie: Option<&str>,
        csrf: Option<&str>,
        now: Instant,
    ) -> Result<Login, Refused> {
        let l = self.login(cookie, now)?;
        let csrf = csrf.ok_or(Refused::NoCsrf)?;
        if !constant_time_eq(l.csrf.as_bytes(), csrf.as_bytes()) {
            return Err(Refused::WrongCsrf);
        }
        Ok(l)
    }

    pub fn logout(&mut self, cookie: &str) {
        self.logins
            .retain(|l| !constant_time_eq(l.cookie.as_bytes(), cookie.as_bytes()));
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    header?.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged_in(auth: &mut Auth, now: Instant) -> Login {
        auth.add_code("c0de".into(), now);
        auth.redeem("c0de", now, "k".into(), "t".into()).unwrap()
    }

    #[test]
    fn a_code_is_single_use() {
        let mut auth = Auth::default();
        let now = Instant::now();
        let login = logged_in(&mut auth, now);
        assert_eq!(login.cookie, "k");
        assert_eq!(
            auth.redeem("c0de", now, "k2".into(), "t2".into()),
            Err(Refused::BadCode)
        );
    }

    #[test]
    fn a_code_expires_after_its_lifetime() {
        let mut auth = Auth::default();
        let now = Instant::now();
        auth.add_code("c0de".into(), now);
        let late = now + CODE_LIFETIME;
        assert_eq!(
            auth.redeem("c0de", late, "k".into(), "t".into()),
            Err(Refused::BadCode)
        );
        auth.add_code("c1de".into(), now);
        let early = now + CODE_LIFETIME - Duration::from_millis(1);
        assert!(auth.redeem("c1de", early, "k".into(), "t".into()).is_ok());
    }

    #[test]
    fn a_wrong_code_is_refused_and_spends_nothing() {
        let mut auth = Auth::default();
        let now = Instant::now();
        auth.add_code("c0de".into(), now);
        assert_eq!(
            auth.redeem("c0dx", now, "k".into(), "t".into()),
            Err(Refused::BadCode)
        );
        assert!(auth.redeem("c0de", now, "k".into(), "t".into()).is_ok());
    }

    #[test]
    fn cookies_expire_and_need_their_csrf_token() {
        let mut auth = Auth::default();
        let now = Instant::now();
        logged_in(&mut auth, now);
        assert!(auth.login(Some("k"), now).is_ok());
        assert_eq!(auth.login(None, now), Err(Refused::NoCookie));
        assert_eq!(auth.login(Some("x"), now), Err(Refused::UnknownCookie));
        assert_eq!(
            auth.login(Some("k"), now + COOKIE_LIFETIME),
            Err(Refused::Expired)
        );
        assert!(auth.login_with_csrf(Some("k"), Some("t"), now).is_ok());
        assert_eq!(
            auth.login_with_csrf(Some("k"), None, now),
            Err(Refused::NoCsrf)
        );
        assert_eq!(
            auth.login_with_csrf(Some("k"), Some("u"), now),
            Err(Refused::WrongCsrf)
        );
        auth.logout("k");
        assert_eq!(auth.login(Some("k"), now), Err(Refused::UnknownCookie));
    }

    #[test]
    fn codes_and_logins_are_bounded() {
        let mut auth = Auth::default();
        let now = Instant::now();
        for i in 0..=MAX_CODES {
            auth.add_code(format!("code{i}"), now);
        }
        assert_eq!(auth.codes.len(), MAX_CODES);
        assert!(
            auth.redeem("code0", now, "k".into(), "t".into()).is_err(),
            "the oldest code was kept past the bound"
        );
        for i in 0..=MAX_SESSIONS {
            auth.add_code(format!("again{i}"), now);
            auth.redeem(&format!("again{i}"), now, format!("k{i}"), "t".into())
                .unwrap();
        }
        assert_eq!(auth.logins.len(), MAX_SESSIONS);
        assert!(auth.login(Some("k0"), now).is_err());
    }

    #[test]
    fn cookies_are_found_by_name() {
        let h = Some("a=1; mcpshare_console_80=abc;b=2");
        assert_eq!(cookie_value(h, "mcpshare_console_80"), Some("abc"));
        assert_eq!(cookie_value(h, "mcpshare_console_81"), None);
        assert_eq!(cookie_value(None, "a"), None);
    }
}
