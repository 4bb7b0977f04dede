//! Normalises the path of a request target before routing, cache key, purge and forwarding,
//! so that one resource has one spelling and no spelling escapes its route.
//!
//! What is done, in order (nginx's behaviour is the reference; docs/https-and-limits.md):
//! - percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`, RFC 3986 §2.3) are decoded,
//!   and the hex digits of every other escape are upper-cased (§6.2.2.1);
//! - dot-segments are removed (§5.2.4).
//!
//! What is refused (the request gets 400, as nginx answers a path that climbs above the root):
//! - a `..` that would climb above `/`;
//! - a `.` or `..` segment spelled with escapes (`%2e%2e`): a back end that decodes again
//!   would see a different path than the one routed;
//! - an escaped NUL (`%00`), a malformed escape (`%zz`, `%4`), or a raw byte outside the
//!   characters RFC 3986 allows in a path.
//!
//! An escaped `/` (`%2F`) is kept as it is (APIs use it inside segments); whether it may change
//! the route is the router's question ([`decoded_slashes`] gives it the path to compare).
//! Repeated slashes are kept: RFC 3986 treats `/a//b` and `/a/b` as different resources.

use std::borrow::Cow;

/// Why a path cannot be normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// `..` would climb above the root.
    AboveRoot,
    /// A `.` or `..` segment written with percent-escapes.
    EncodedDotSegment,
    /// `%00`.
    EncodedNul,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// A byte RFC 3986 does not allow in a path (space, control, non-ASCII, `"`, `<`, ...).
    BadByte,
    /// An escaped `/` that, decoded, would route the request elsewhere (the router decides).
    EncodedSlash,
}

impl PathError {
    /// The body of the 400 answer: the reason, one line.
    pub fn body(self) -> &'static str {
        match self {
            PathError::AboveRoot => "the path climbs above /\n",
            PathError::EncodedDotSegment => "a dot-segment is hidden in percent-encoding\n",
            PathError::EncodedNul => "the path holds an encoded NUL\n",
            PathError::BadEscape => "the path holds a malformed percent-escape\n",
            PathError::BadByte => "the path holds a character not allowed in a URI\n",
            PathError::EncodedSlash => "an escaped / in the path would change its route\n",
        }
    }
}

/// The normalised form of `path` (which starts with `/`): borrowed when it is already normal,
/// which is the common case and costs one scan.
pub fn normalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    if bytes.iter().all(|&b| is_plain_path_byte(b)) && !has_dot_segment(bytes) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(bytes)?;
    remove_dot_segments(&decoded).map(Cow::Owned)
}

/// The path with `%2F` decoded and dot-segments removed again, when it holds an escaped
/// slash: the path a back end that decodes slashes would see. `None` without `%2F`.
pub fn decoded_slashes(normalized: &str) -> Option<Result<String, PathError>> {
    if !contains_ignore_case(normalized.as_bytes(), b"%2F") {
        return None;
    }
    let mut out = String::with_capacity(normalized.len());
    let mut rest = normalized;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3).unwrap_or(&rest[i..]);
        if esc.eq_ignore_ascii_case("%2F") {
            out.push('/');
        } else {
            out.push_str(esc);
        }
        rest = rest.get(i + esc.len()..).unwrap_or("");
    }
    out.push_str(rest);
    Some(remove_dot_segments(&out))
}

/// A byte that can stand in a normal path as it is: unreserved, sub-delims, ':', '@', '/'
/// (RFC 3986 §3.3). '%' is not among them: escapes need a look.
fn is_plain_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
        )
}

/// Whether the path has a `.` or `..` segment.
fn has_dot_segment(path: &[u8]) -> bool {
    path.split(|&b| b == b'/')
        .any(|seg| seg == b"." || seg == b"..")
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes escaped unreserved characters and upper-cases the other escapes; refuses an
/// escaped dot-segment, an escaped NUL, a malformed escape and a disallowed raw byte.
fn decode_unreserved(path: &[u8]) -> Result<String, PathError> {
    let mut out = String::with_capacity(path.len());
    for segment in path.split(|&b| b == b'/') {
        let start = out.len();
        let mut escaped = false;
        let mut i = 0;
        while let Some(&b) = segment.get(i) {
            if b == b'%' {
                let (Some(hi), Some(lo)) = (
                    segment.get(i + 1).copied().and_then(hex),
                    segment.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError::BadEscape);
                };
                let c = hi << 4 | lo;
                if c == 0 {
                    return Err(PathError::EncodedNul);
                }
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(c));
                    escaped = true;
                } else {
                    const HEX: &[u8; 16] = b"0123456789ABCDEF";
                    out.push('%');
                    out.push(char::from(HEX[usize::from(hi)]));
                    out.push(char::from(HEX[usize::from(lo)]));
                }
                i += 3;
            } else if is_plain_path_byte(b) {
                out.push(char::from(b));
                i += 1;
            } else {
                return Err(PathError::BadByte);
            }
        }
        let seg = out.get(start..).unwrap_or("");
        if escaped && (seg == "." || seg == "..") {
            return Err(PathError::EncodedDotSegment);
        }
        out.push('/');
    }
    // The loop adds a '/' after every segment, the last one included.
    out.pop();
    Ok(out)
}

/// RFC 3986 §5.2.4 on a path that starts with `/`, except that climbing above the root is an
/// error rather than being clamped (nginx answers it with 400).
fn remove_dot_segments(path: &str) -> Result<String, PathError> {
    let mut segments: Vec<&str> = Vec::new();
    let mut parts = path.split('/').skip(1).peekable();
    // A path ending in "." or ".." names a directory: keep its trailing slash.
    let mut trailing_slash = false;
    while let Some(seg) = parts.next() {
        let last = parts.peek().is_none();
        match seg {
            "." => trailing_slash = last,
            ".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
                trailing_slash = last;
            }
            s => {
                segments.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> Result<String, PathError> {
        normalize(p).map(Cow::into_owned)
    }

    #[test]
    fn a_normal_path_is_borrowed_unchanged() {
        for p in ["/", "/a/b.css", "/a//b", "/a/b/", "/x;y=1/@:z", "/%2F/"] {
            let n = normalize(p);
            assert_eq!(n.as_deref(), Ok(p), "{p}");
        }
        assert!(matches!(normalize("/a/b.css"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn rfc3986_5_2_4_dot_segments_are_removed() {
        assert_eq!(norm("/static/../api/x").as_deref(), Ok("/api/x"));
        assert_eq!(norm("/a/./b").as_deref(), Ok("/a/b"));
        assert_eq!(norm("/a/b/..").as_deref(), Ok("/a/"));
        assert_eq!(norm("/a/b/.").as_deref(), Ok("/a/b/"));
        assert_eq!(norm("/a/../../b"), Err(PathError::AboveRoot));
        assert_eq!(norm("/.."), Err(PathError::AboveRoot));
        assert_eq!(norm("/a/..").as_deref(), Ok("/"));
        assert_eq!(norm("/..a/b").as_deref(), Ok("/..a/b"));
    }

    #[test]
    fn rfc3986_6_2_2_unreserved_escapes_are_decoded_and_others_upper_cased() {
        assert_eq!(norm("/%61%62c").as_deref(), Ok("/abc"));
        assert_eq!(norm("/a%7eb%2d").as_deref(), Ok("/a~b-"));
        assert_eq!(norm("/a%2fb").as_deref(), Ok("/a%2Fb"));
        assert_eq!(norm("/a%20b").as_deref(), Ok("/a%20b"));
        assert_eq!(norm("/a%2Eb").as_deref(), Ok("/a.b"));
    }

    #[test]
    fn hidden_dot_segments_nul_and_bad_escapes_are_refused() {
        assert_eq!(norm("/%2e%2e/etc"), Err(PathError::EncodedDotSegment));
        assert_eq!(norm("/static/.%2E/api"), Err(PathError::EncodedDotSegment));
        assert_eq!(norm("/%2e/x"), Err(PathError::EncodedDotSegment));
        assert_eq!(norm("/a%00"), Err(PathError::EncodedNul));
        assert_eq!(norm("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(norm("/a%4"), Err(PathError::BadEscape));
        assert_eq!(norm("/a b"), Err(PathError::BadByte));
        assert_eq!(norm("/a\u{e9}"), Err(PathError::BadByte));
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for p in ["/static/../api/x", "/%61/./b/", "/a%2fb/../c", "/x/%7E/.."] {
            let once = norm(p).unwrap();
            assert_eq!(norm(&once).unwrap(), once, "{p}");
        }
    }

    #[test]
    fn decoded_slashes_show_what_a_decoding_back_end_would_route() {
        assert_eq!(decoded_slashes("/a/b"), None);
        assert_eq!(
            decoded_slashes("/static%2F..%2Fapi/x"),
            Some(Ok("/api/x".to_owned()))
        );
        assert_eq!(decoded_slashes("/g%2fp"), Some(Ok("/g/p".to_owned())));
        assert_eq!(
            decoded_slashes("/a%2F..%2F..%2Fb"),
            Some(Err(PathError::AboveRoot))
        );
    }
}
