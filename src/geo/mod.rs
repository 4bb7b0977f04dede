//! GeoIP and geometry: where a client or a region is, and how far apart they are.

pub mod distance;
