//! Content-coding negotiation (RFC 9110 §12.5.3): from a request's `Accept-Encoding` to the
//! one coding the response will have, which is also its cache variant.

use crate::vocab::Coding;

/// Picks the coding for a request: the first of `preference` that the client accepts (any
/// q-value above 0, directly or through `*`), else identity. Without `Accept-Encoding` the
/// answer is identity, as nginx and the CDNs do: a client that says nothing gets bytes any
/// client can read.
pub fn negotiate(accept_encoding: Option<&[u8]>, preference: &[Coding]) -> Coding {
    let Some(header) = accept_encoding.and_then(|h| std::str::from_utf8(h).ok()) else {
        return Coding::Identity;
    };
    let accepted = Accepted::parse(header);
    preference
        .iter()
        .copied()
        .find(|&c| c != Coding::Identity && accepted.accepts(c))
        .unwrap_or(Coding::Identity)
}

/// The codings a client accepts among those a cache variant may depend on, as a set: what a
/// route that does not compress keys `Vary: Accept-Encoding` on. q-values only decide
/// membership (above 0), so no client can make more than [`ACCEPTED_SETS`] variants by
/// varying weights (`gzip;q=0.1`, `gzip;q=0.11`, ...) or adding unknown codings.
///
/// `deflate` is in the set although Meridian never produces it: an origin may, and a client
/// that did not ask for it must not be served it.
pub fn accepted_set(accept_encoding: Option<&[u8]>) -> &'static str {
    let Some(header) = accept_encoding.and_then(|h| std::str::from_utf8(h).ok()) else {
        return ACCEPTED_SET_NAMES[0];
    };
    let accepted = Accepted::parse(header);
    let bit =
        |q: Option<f32>, b: usize| usize::from(q.or(accepted.any).is_some_and(|q| q > 0.0)) * b;
    let mask = bit(accepted.br, 1)
        | bit(accepted.deflate, 2)
        | bit(accepted.gzip, 4)
        | bit(accepted.zstd, 8);
    ACCEPTED_SET_NAMES
        .get(mask)
        .copied()
        .unwrap_or(ACCEPTED_SET_NAMES[0])
}

/// How many values [`accepted_set`] can return.
pub const ACCEPTED_SETS: usize = 16;

/// Each subset of {br, deflate, gzip, zstd}, indexed by its bit mask, spelled sorted.
const ACCEPTED_SET_NAMES: [&str; ACCEPTED_SETS] = [
    "identity",
    "br",
    "deflate",
    "br,deflate",
    "gzip",
    "br,gzip",
    "deflate,gzip",
    "br,deflate,gzip",
    "zstd",
    "br,zstd",
    "deflate,zstd",
    "br,deflate,zstd",
    "gzip,zstd",
    "br,gzip,zstd",
    "deflate,gzip,zstd",
    "br,deflate,gzip,zstd",
];

/// The q-values a client gave, per coding and for `*`.
#[derive(Debug, Default)]
struct Accepted {
    br: Option<f32>,
    zstd: Option<f32>,
    gzip: Option<f32>,
    deflate: Option<f32>,
    any: Option<f32>,
}

impl Accepted {
    fn parse(header: &str) -> Accepted {
        let mut out = Accepted::default();
        for element in header.split(',') {
            let mut parts = element.split(';');
            let token = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = 1.0;
            for param in parts {
                let Some((name, value)) = param.split_once('=') else {
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("q") {
                    // An unreadable weight makes the element unusable, not acceptable.
                    q = qvalue(value.trim()).unwrap_or(0.0);
                }
            }
            let slot = match token.as_str() {
                "br" => &mut out.br,
                "zstd" => &mut out.zstd,
                "gzip" | "x-gzip" => &mut out.gzip,
                "deflate" => &mut out.deflate,
                "*" => &mut out.any,
                _ => continue,
            };
            // A repeated coding keeps its first weight.
            slot.get_or_insert(q);
        }
        out
    }

    fn accepts(&self, coding: Coding) -> bool {
        let explicit = match coding {
            Coding::Br => self.br,
            Coding::Zstd => self.zstd,
            Coding::Gzip => self.gzip,
            Coding::Identity => return true,
        };
        explicit.or(self.any).is_some_and(|q| q > 0.0)
    }
}

/// RFC 9110 §12.4.2: `0` to `1` with at most three decimals.
fn qvalue(s: &str) -> Option<f32> {
    let valid = match s.split_once('.') {
        None => s == "0" || s == "1",
        Some((int, frac)) => {
            frac.len() <= 3
                && frac.bytes().all(|b| b.is_ascii_digit())
                && (int == "0" || (int == "1" && frac.bytes().all(|b| b == b'0')))
        }
    };
    valid.then(|| s.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREF: [Coding; 3] = [Coding::Br, Coding::Zstd, Coding::Gzip];

    fn pick(header: &str) -> Coding {
        negotiate(Some(header.as_bytes()), &PREF)
    }

    #[test]
    fn the_servers_preference_wins_among_acceptable_codings() {
        assert_eq!(pick("gzip, br"), Coding::Br);
        assert_eq!(pick("br;q=1, gzip;q=0.5"), Coding::Br);
        assert_eq!(pick("gzip;q=1.0, br;q=0.001"), Coding::Br);
        assert_eq!(pick("gzip, deflate"), Coding::Gzip);
        assert_eq!(pick("zstd, gzip"), Coding::Zstd);
        assert_eq!(pick("x-gzip"), Coding::Gzip);
        assert_eq!(pick("GZIP"), Coding::Gzip);
        let gzip_first = [Coding::Gzip, Coding::Br];
        assert_eq!(negotiate(Some(b"br, gzip"), &gzip_first), Coding::Gzip);
    }

    #[test]
    fn q_zero_excludes_and_star_includes() {
        assert_eq!(pick("br;q=0, gzip"), Coding::Gzip);
        assert_eq!(pick("*"), Coding::Br);
        assert_eq!(pick("*;q=0.5, br;q=0"), Coding::Zstd);
        assert_eq!(pick("*;q=0"), Coding::Identity);
        assert_eq!(pick("identity"), Coding::Identity);
        assert_eq!(pick("br;q=0, zstd;q=0, gzip;q=0"), Coding::Identity);
    }

    #[test]
    fn absent_empty_or_unreadable_headers_get_identity() {
        assert_eq!(negotiate(None, &PREF), Coding::Identity);
        assert_eq!(pick(""), Coding::Identity);
        assert_eq!(pick("deflate, compress"), Coding::Identity);
        assert_eq!(negotiate(Some(&[0xff, 0xfe]), &PREF), Coding::Identity);
        assert_eq!(
            pick("br;q=2"),
            Coding::Identity,
            "q above 1 is not a qvalue"
        );
        assert_eq!(pick("br;q=0.1234"), Coding::Identity, "four decimals");
        assert_eq!(pick("br;q=abc, gzip"), Coding::Gzip);
    }

    #[test]
    fn accepted_sets_ignore_weights_order_case_and_unknown_codings() {
        let set = |h: &str| accepted_set(Some(h.as_bytes()));
        assert_eq!(set("gzip, br"), "br,gzip");
        assert_eq!(set("BR;q=0.1, gzip;q=0.11, foo, bar;q=1"), "br,gzip");
        assert_eq!(set("gzip;q=0, br"), "br");
        assert_eq!(set("*"), "br,deflate,gzip,zstd");
        assert_eq!(set("*, deflate;q=0"), "br,gzip,zstd");
        assert_eq!(set("identity"), "identity");
        assert_eq!(accepted_set(None), "identity");
        let distinct: std::collections::HashSet<&str> = (0..1000)
            .map(|i| format!("gzip;q=0.{i:03}, x-custom-{i}"))
            .map(|h| accepted_set(Some(h.as_bytes())))
            .collect();
        assert!(distinct.len() <= 2, "{distinct:?}");
        for (mask, name) in ACCEPTED_SET_NAMES.iter().enumerate() {
            assert_eq!(set(&name.replace(',', ", ")), *name, "mask {mask}");
        }
    }

    #[test]
    fn qvalues_follow_the_grammar() {
        assert_eq!(qvalue("1"), Some(1.0));
        assert_eq!(qvalue("1.000"), Some(1.0));
        assert_eq!(qvalue("0.5"), Some(0.5));
        assert_eq!(qvalue("0."), Some(0.0));
        assert_eq!(qvalue("1.5"), None);
        assert_eq!(qvalue(".5"), None);
        assert_eq!(qvalue("-0"), None);
    }
}
