//! Disk hits sent with `sendfile(2)`: the disk tier hands out a placeholder for each fragment
//! the page cache holds (src/cache/tiered/hit.rs), and each placeholder's file region is passed
//! here to the HTTP/1 session, which sends the file's bytes in its place (the vendored
//! pingora-core's file-region body, vendor/README.md). The body is never read into memory:
//! nginx's `sendfile on`.

use crate::cache::tiered::hit::DiskHit;
use bytes::Bytes;
use pingora_cache::CachePhase;
use pingora_core::protocols::file_region::is_placeholder;
use pingora_error::{Error, ErrorType, OrErr, Result};
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// On a disk hit, lets the hit send its fragments as file regions when the connection is
/// plain HTTP/1 (TLS and HTTP/2 write bytes they encrypt or frame themselves) and no range
/// is asked for (a multipart range cuts body chunks apart, placeholders with them).
///
/// A stored response without `Content-Length` (a transformed fill: its length was not known
/// while it streamed) gets the length the disk tier holds, so that it is framed by length,
/// as `sendfile` needs, rather than chunked.
pub(super) fn offer(session: &mut Session, resp: &mut ResponseHeader, tls: bool) {
    if tls
        || session.is_http2()
        || session
            .req_header()
            .headers
            .contains_key(http::header::RANGE)
        || !hit_phase(session)
    {
        return;
    }
    let Some(hit) = session
        .cache
        .hit_handler()
        .as_any_mut()
        .downcast_mut::<DiskHit>()
    else {
        return;
    };
    hit.allow_file_regions();
    if resp.status == http::StatusCode::OK
        && !resp.headers.contains_key(http::header::CONTENT_LENGTH)
    {
        // Best effort: without the header the body goes chunked, read rather than sent.
        if resp
            .insert_header(http::header::CONTENT_LENGTH, hit.body_len())
            .is_ok()
        {
            resp.remove_header(&http::header::TRANSFER_ENCODING);
        }
    }
}

/// Hands a placeholder's file region to the HTTP/1 session that writes it next; on a
/// session that cannot send a file, puts the region's bytes in the placeholder's place.
/// A placeholder without its region is an error: its zeros are never sent.
pub(super) fn hand_over(session: &mut Session, body: &mut Option<Bytes>) -> Result<()> {
    if !body.as_deref().is_some_and(is_placeholder) {
        return Ok(());
    }
    let region = if hit_phase(session) {
        session
            .cache
            .hit_handler()
            .as_any_mut()
            .downcast_mut::<DiskHit>()
            .and_then(DiskHit::take_region)
    } else {
        None
    };
    let Some(region) = region else {
        return Error::e_explain(
            ErrorType::InternalError,
            "a disk hit's body placeholder came without its file region",
        );
    };
    let reach = crate::guard::stream::GuardedStream::tcp_beneath;
    if let Err(region) = session
        .as_downstream_mut()
        .send_next_body_from_file(region, reach)
    {
        let bytes = region
            .read()
            .or_err(ErrorType::InternalError, "reading a disk hit's file region")?;
        *body = Some(Bytes::from(bytes));
    }
    Ok(())
}

/// The phases in which pingora serves a stored body through the hit handler.
fn hit_phase(session: &Session) -> bool {
    matches!(
        session.cache.phase(),
        CachePhase::Hit | CachePhase::Stale | CachePhase::StaleUpdating
    )
}
