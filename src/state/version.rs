//! mcpshare's own version: the one this binary reports and the order
//! between two, which decides whether a running daemon is replaced.

/// Reported version; tests may override it to exercise version handling.
pub fn version() -> String {
    std::env::var("MCPSHARE_TEST_REPORTED_VERSION")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string())
}

/// Is `ours` strictly newer than the daemon's `theirs`? Unparsable: no.
pub fn is_newer(ours: &str, theirs: &str) -> bool {
    semver_cmp(ours, theirs) == Some(std::cmp::Ordering::Greater)
}

/// Semantic-version precedence (semver 2.0.0 section 11): numeric parts
/// compare as numbers, a pre-release sorts before its release, build
/// metadata is ignored. None when either side does not parse.
pub fn semver_cmp(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    use std::cmp::Ordering;
    fn parse(v: &str) -> Option<([u64; 3], Option<Vec<String>>)> {
        let v = v.split('+').next()?;
        let (core, pre) = match v.split_once('-') {
            Some((c, p)) => (
                c,
                Some(p.split('.').map(str::to_string).collect::<Vec<_>>()),
            ),
            None => (v, None),
        };
        let mut nums = core.split('.').map(|n| n.parse::<u64>().ok());
        let parsed = [nums.next()??, nums.next()??, nums.next()??];
        if nums.next().is_some() || pre.as_ref().is_some_and(|p| p.iter().any(String::is_empty)) {
            return None;
        }
        Some((parsed, pre))
    }
    let (na, pa) = parse(a)?;
    let (nb, pb) = parse(b)?;
    Some(na.cmp(&nb).then_with(|| match (pa, pb) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            for (i, j) in x.iter().zip(&y) {
                let o = match (i.parse::<u64>(), j.parse::<u64>()) {
                    (std::result::Result::Ok(m), std::result::Result::Ok(n)) => m.cmp(&n),
                    (std::result::Result::Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), std::result::Result::Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => i.cmp(j),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn semver_precedence() {
        assert_eq!(semver_cmp("1.0.0", "1.0.0"), Some(Equal));
        assert_eq!(semver_cmp("1.10.0", "1.9.0"), Some(Greater));
        assert_eq!(semver_cmp("1.0.0-alpha", "1.0.0"), Some(Less));
        assert_eq!(semver_cmp("1.0.0-alpha.2", "1.0.0-alpha.10"), Some(Less));
        assert_eq!(semver_cmp("1.0.0-alpha", "1.0.0-alpha.1"), Some(Less));
        assert_eq!(
            semver_cmp("1.0.0-alpha.beta", "1.0.0-alpha.1"),
            Some(Greater)
        );
        assert_eq!(semver_cmp("1.0.0-rc.1", "1.0.0-beta.11"), Some(Greater));
        assert_eq!(semver_cmp("1.0.0+build.5", "1.0.0"), Some(Equal));
        assert_eq!(semver_cmp("1.0", "1.0.0"), None);
        assert!(is_newer("0.2.0", "0.1.9"));
        assert!(
            !is_newer("0.1.0", "0.1.0"),
            "an equal version never replaces"
        );
        assert!(!is_newer("garbage", "0.1.0"));
    }
}
