//! What a purge asks for, in the cache's key form: the request an operator made on one node,
//! as every node of a cluster applies it (it travels between nodes as JSON).

use super::tiered::TieredStorage;
use super::PurgeMode;
use serde::{Deserialize, Serialize};

/// What a purge selects. URLs and prefixes are cache URLs (`http://host/path?query`, host
/// case-folded, path normalised, the route's query rule applied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Selector {
    /// Every variant of one URL.
    Url(String),
    /// URLs starting with this.
    Prefix(String),
    /// A `Surrogate-Key` / `Cache-Tag`.
    Tag(String),
    All,
}

/// A purge: what it selects and whether it removes or marks stale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeRequest {
    pub selector: Selector,
    pub mode: PurgeMode,
}

impl PurgeRequest {
    /// Applies the purge to both tiers; returns the memory objects purged (the disk's are
    /// purged by a rule applied when they are looked up).
    pub fn apply(&self, storage: &TieredStorage) -> usize {
        match &self.selector {
            Selector::Url(url) => storage.purge_url(url, self.mode),
            Selector::Prefix(prefix) => storage.purge_prefix(prefix, self.mode),
            Selector::Tag(tag) => storage.purge_tag(tag, self.mode),
            Selector::All => storage.purge_all(self.mode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purge_travels_as_json_and_comes_back_the_same() {
        for selector in [
            Selector::Url("http://a.test/x?b=1".into()),
            Selector::Prefix("http://a.test/img/".into()),
            Selector::Tag("product-7".into()),
            Selector::All,
        ] {
            let purge = PurgeRequest {
                selector,
                mode: PurgeMode::Soft,
            };
            let text = serde_json::to_string(&purge).unwrap();
            assert_eq!(serde_json::from_str::<PurgeRequest>(&text).unwrap(), purge);
        }
        let text = r#"{"selector":{"tag":"t"},"mode":"hard"}"#;
        let purge: PurgeRequest = serde_json::from_str(text).unwrap();
        assert_eq!(purge.selector, Selector::Tag("t".into()));
        assert_eq!(purge.mode, PurgeMode::Hard);
    }
}
