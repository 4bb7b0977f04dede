//! Body transforms paid once: responses on `minify` / `compress` routes are minified and
//! compressed while their cache fill streams in, so every later hit sends the stored,
//! already-transformed bytes.
//!
//! The request's `Accept-Encoding` is negotiated down to one coding, which is also the cache
//! variant (`gzip, br` and `br;q=1, gzip;q=0.5` share one stored object). Origins are asked
//! for identity; a body an origin encodes anyway is decoded first.

pub mod codec;
pub mod minify;
pub mod negotiate;
pub mod plan;
pub mod pool;

/// A content coding Meridian produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    Identity,
    Br,
    Zstd,
    Gzip,
}

impl Coding {
    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Identity => "identity",
            Coding::Br => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// The coding a `Content-Encoding` token names, if Meridian knows it.
    pub fn from_token(token: &str) -> Option<Coding> {
        match token.trim().to_ascii_lowercase().as_str() {
            "identity" | "" => Some(Coding::Identity),
            "br" => Some(Coding::Br),
            "zstd" => Some(Coding::Zstd),
            "gzip" | "x-gzip" => Some(Coding::Gzip),
            _ => None,
        }
    }
}
