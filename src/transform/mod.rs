//! Body transforms paid once: responses on `minify` / `compress` routes are minified and
//! compressed while their cache fill streams in, so every later hit sends the stored,
//! already-transformed bytes.
//!
//! The request's `Accept-Encoding` is negotiated down to one coding, which is also the cache
//! variant (`gzip, br` and `br;q=1, gzip;q=0.5` share one stored object). Origins are asked
//! for identity; a body an origin encodes anyway is decoded first.

pub mod codec;
pub mod image;
pub mod minify;
pub mod negotiate;
pub mod plan;
pub mod pool;
