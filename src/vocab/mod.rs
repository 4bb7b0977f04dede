//! Shared vocabulary: the HTTP words every layer above uses the same way (content codings,
//! image formats, host names, request paths). Leaf modules: they import nothing from the
//! crate, so both sides of any arrow in the layered map (docs/architecture.md) can use them.

pub mod coding;
pub mod host;
pub mod image;
pub mod url_path;

pub use coding::Coding;
