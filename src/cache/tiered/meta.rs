//! pingora's cache metadata as the disk stores it.

use pingora_cache::CacheMeta;

/// The meta as the disk stores it: internal part length, internal part, header part.
pub(super) fn encode_meta(meta: &CacheMeta) -> Option<Vec<u8>> {
    let (internal, header) = meta.serialize().ok()?;
    let mut out = Vec::with_capacity(4 + internal.len() + header.len());
    out.extend_from_slice(&u32::try_from(internal.len()).ok()?.to_le_bytes());
    out.extend_from_slice(&internal);
    out.extend_from_slice(&header);
    Some(out)
}

pub(super) fn decode_meta(bytes: &[u8]) -> Option<CacheMeta> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let internal = bytes.get(4..4 + len)?;
    let header = bytes.get(4 + len..)?;
    CacheMeta::deserialize(internal, header).ok()
}
