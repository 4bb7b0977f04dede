//! Host names as sites are configured and cache keys are written: lower case, without port,
//! userinfo or trailing dot. The edge (routing) and the admin API (purge URLs) share it.

/// Longest host name DNS allows (RFC 1035 §2.3.4), plus room for an IPv6 literal.
pub const MAX_HOST: usize = 255;

/// Lower-cases `raw` into `buf` and drops any port; `None` if it cannot be a host.
pub fn normalize_host<'b>(raw: &[u8], buf: &'b mut [u8; MAX_HOST]) -> Option<&'b str> {
    let raw = raw.trim_ascii();
    // Userinfo in an authority ("user@host") is not part of the host.
    let raw = match raw.iter().rposition(|&b| b == b'@') {
        Some(at) => raw.get(at + 1..)?,
        None => raw,
    };
    let host = if raw.first() == Some(&b'[') {
        // IPv6 literal: keep the brackets, drop what follows the closing one.
        let end = raw.iter().position(|&b| b == b']')?;
        raw.get(..=end)?
    } else {
        match raw.iter().position(|&b| b == b':') {
            Some(colon) => raw.get(..colon)?,
            None => raw,
        }
    };
    // A trailing dot names the same host (RFC 1034 §3.1).
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.is_empty() || host.len() > MAX_HOST {
        return None;
    }
    let out = buf.get_mut(..host.len())?;
    for (o, &b) in out.iter_mut().zip(host) {
        *o = b.to_ascii_lowercase();
    }
    std::str::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalize_handles_ipv6_userinfo_and_rejects_garbage() {
        let mut buf = [0u8; MAX_HOST];
        assert_eq!(normalize_host(b"[::1]:8080", &mut buf), Some("[::1]"));
        assert_eq!(normalize_host(b"u@A.test", &mut buf), Some("a.test"));
        assert_eq!(normalize_host(b":80", &mut buf), None);
        assert_eq!(normalize_host(&[b'a'; 300], &mut buf), None);
        assert_eq!(normalize_host(b"\xff\xfe", &mut buf), None);
    }

    proptest! {
        #[test]
        fn host_normalisation_never_panics_and_yields_lower_case_without_a_port(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut buf = [0u8; MAX_HOST];
            if let Some(host) = normalize_host(&raw, &mut buf) {
                prop_assert!(!host.is_empty());
                prop_assert!(!host.bytes().any(|b| b.is_ascii_uppercase()));
                if !host.starts_with('[') {
                    prop_assert!(!host.contains(':'));
                }
            }
        }
    }
}
