//! The indices that name regions and sites across the runtime model (a leaf: the `[dns]`
//! model and the rest of the runtime both use them).

/// Index of a region in `Runtime::regions`.
pub type RegionId = usize;
/// Index of a site in `Runtime::sites`.
pub type SiteId = usize;
