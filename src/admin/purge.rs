//! `POST /purge`: parses a purge request and turns its URL into the cache's key form.
//!
//! Exactly one selector: `url=` (every variant of one URL), `prefix=` (URLs starting with
//! it), `tag=` (a `Surrogate-Key` / `Cache-Tag`), or `all=1`; add `soft=1` to mark stale
//! instead of deleting. URLs are `http://host/path?query` (or `https://`), matched as the
//! cache keys them: host case-folded and without port, path normalised, the route's query
//! rule applied; http and https name the same object unless the route sets
//! `cache_key.scheme`.

use crate::cache::purge::{PurgeRequest, Selector};
use crate::cache::target::keyed_target;
use crate::cache::PurgeMode;
use crate::config::Runtime;
use crate::vocab::host::{normalize_host, MAX_HOST};
use crate::vocab::url_path::{self, PathError};

/// Parses the query string of `POST /purge`, normalising URLs against the configuration.
pub fn parse(rt: &Runtime, query: &str) -> Result<PurgeRequest, String> {
    let mut selector = None;
    let mut mode = PurgeMode::Hard;
    let mut set = |s: Selector| {
        if selector.replace(s).is_some() {
            Err("give exactly one of url, prefix, tag or all".to_owned())
        } else {
            Ok(())
        }
    };
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "url" => set(Selector::Url(cache_key_url(rt, &v, true)?))?,
            "prefix" => set(Selector::Prefix(cache_key_url(rt, &v, false)?))?,
            "tag" if v.trim().is_empty() => return Err("tag is empty".into()),
            "tag" => set(Selector::Tag(v.trim().to_owned()))?,
            "all" if is_true(&v) => set(Selector::All)?,
            "all" => {}
            "soft" => {
                mode = if is_true(&v) {
                    PurgeMode::Soft
                } else {
                    PurgeMode::Hard
                }
            }
            other => {
                return Err(format!(
                    "unknown parameter {other:?}; use url, prefix, tag, all, soft"
                ))
            }
        }
    }
    let selector = selector.ok_or("give one of url, prefix, tag or all=1")?;
    Ok(PurgeRequest { selector, mode })
}

fn is_true(v: &str) -> bool {
    matches!(v, "1" | "true" | "yes")
}

/// `http(s)://Host:port/p?q` in the cache's key form: host case-folded without its port, the
/// path normalised as the edge normalises request paths. For a URL the rule of the route
/// that serves it applies (query rule, and the scheme when the route keys on it); a prefix
/// is taken as written after the host, and matches both schemes.
fn cache_key_url(rt: &Runtime, url: &str, apply_rule: bool) -> Result<String, String> {
    let (https, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else {
        return Err(format!("{url:?} is not an http:// or https:// URL"));
    };
    let (authority, target) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let mut buf = [0u8; MAX_HOST];
    let host = normalize_host(authority.as_bytes(), &mut buf)
        .ok_or_else(|| format!("{url:?} has no valid host"))?;
    let (site, host_index) = rt
        .host_entry(host)
        .ok_or_else(|| format!("no site serves host {host:?}"))?;
    let site = rt.sites.get(site).ok_or("site vanished")?;
    let host = site.hosts.get(host_index).map_or(host, String::as_str);
    let describe = |e: PathError| format!("{url:?}: {}", e.body().trim_end());
    if !apply_rule {
        // A prefix is not a whole path ("/img/" must keep its trailing slash): its path is
        // normalised, and matched as written, without the query rule.
        let path = target.split_once('?').map_or(target, |(p, _)| p);
        let path = url_path::normalize(path).map_err(describe)?;
        return Ok(format!("http://{host}{path}"));
    }
    Ok(keyed_target(site, https, host, target)
        .map_err(describe)?
        .url)
}

/// Compares a presented bearer token with the configured one in constant time.
pub fn token_matches(authorization: Option<&[u8]>, token: &str) -> bool {
    let Some(presented) = authorization.and_then(|a| a.strip_prefix(b"Bearer ")) else {
        return false;
    };
    let expected = token.as_bytes();
    presented.len() == expected.len()
        && presented
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> Runtime {
        crate::config::runtime_for_tests(
            r#"
[[sites]]
name = "s"
hosts = ["a.test"]
[[sites.routes]]
path = "/"
[[sites.routes]]
path = "/sorted/"
cache_key = { query = "sort" }
[[sites.routes]]
path = "/tls/"
cache_key = { scheme = true }
"#,
        )
    }

    fn selector(q: &str) -> Selector {
        parse(&rt(), q).unwrap().selector
    }

    #[test]
    fn urls_are_normalised_like_cache_keys() {
        assert_eq!(
            selector("url=http%3A%2F%2FA.Test%3A8080%2Fx%3Fq%3D1"),
            Selector::Url("http://a.test/x?q=1".into())
        );
        assert_eq!(
            selector("url=http://a.test/sorted/p?b=1%26a=2"),
            Selector::Url("http://a.test/sorted/p?a=2&b=1".into())
        );
        assert_eq!(
            selector("prefix=http://a.test/img/"),
            Selector::Prefix("http://a.test/img/".into())
        );
        assert_eq!(
            selector("url=http://a.test/img/../x/%61"),
            Selector::Url("http://a.test/x/a".into()),
            "paths are normalised as the edge normalises them"
        );
        assert_eq!(
            selector("url=https://a.test/x"),
            Selector::Url("http://a.test/x".into()),
            "http and https share a key by default"
        );
        assert_eq!(
            selector("url=https://a.test/tls/x"),
            Selector::Url("https://a.test/tls/x".into())
        );
        assert_eq!(selector("tag=product-7"), Selector::Tag("product-7".into()));
        assert_eq!(selector("all=1"), Selector::All);
        assert_eq!(parse(&rt(), "all=1&soft=1").unwrap().mode, PurgeMode::Soft);
    }

    #[test]
    fn bad_purge_requests_say_what_is_wrong() {
        let err = |q: &str| parse(&rt(), q).unwrap_err();
        assert!(err("").contains("give one of"));
        assert!(err("url=http://a.test/&tag=x").contains("exactly one"));
        assert!(err("url=ftp://a.test/").contains("not an http:// or https:// URL"));
        assert!(err("url=http://a.test/%252e%252e/x").contains("dot-segment"));
        assert!(err("url=http://b.test/").contains("no site serves host \"b.test\""));
        assert!(err("tag=").contains("empty"));
        assert!(err("what=1").contains("unknown parameter"));
    }

    #[test]
    fn only_the_exact_bearer_token_is_accepted() {
        assert!(token_matches(Some(b"Bearer s3cret"), "s3cret"));
        assert!(!token_matches(Some(b"Bearer s3cre"), "s3cret"));
        assert!(!token_matches(Some(b"Bearer s3cret2"), "s3cret"));
        assert!(!token_matches(Some(b"s3cret"), "s3cret"));
        assert!(!token_matches(None, "s3cret"));
    }
}
