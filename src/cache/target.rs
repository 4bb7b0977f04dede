//! A request target as the cache keys it: the one rule that the edge's invalidation after
//! unsafe methods and the admin API's purge URLs share with the edge's own cache key.

use super::policy::route_cache_url;
use crate::config::runtime::{Route, Site};
use crate::vocab::url_path::{self, PathError};

/// A target of one site, keyed.
#[derive(Debug)]
pub struct KeyedTarget<'a> {
    /// The route that serves the target's normalised path, if any.
    pub route: Option<&'a Route>,
    /// The cache URL under that route's rule (query rule, scheme).
    pub url: String,
}

/// Keys `target` (a path and optional query, as received or as written in a URL) of `site`
/// on `host`: the path normalised as the edge normalises request paths, then the rule of the
/// route serving it applied.
pub fn keyed_target<'a>(
    site: &'a Site,
    https: bool,
    host: &str,
    target: &str,
) -> Result<KeyedTarget<'a>, PathError> {
    let (path, query) = target
        .split_once('?')
        .map_or((target, None), |(p, q)| (p, Some(q)));
    let path = url_path::normalize(path)?;
    let route = site.route_for_path(&path);
    let target = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.into_owned(),
    };
    Ok(KeyedTarget {
        route,
        url: route_cache_url(route, https, host, &target),
    })
}
