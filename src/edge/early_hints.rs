//! `103 Early Hints` and other interim responses from an origin (RFC 8297, RFC 9110 §15.2):
//! passed to the client as they come, never stored.
//!
//! pingora forwards an interim response only when it arrives in a read of its own: when it
//! comes in one batch with a cacheable final header, the batch is dropped for the response
//! served from the cache fill, and the hints with it. So Meridian writes interim responses to
//! an HTTP/1.1 client itself, here, and has the session ignore pingora's own copy. (An h2
//! client gets what pingora forwards; the batched case is not covered there.)

use super::EdgeProxy;
use crate::cache::policy;
use pingora_error::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

impl EdgeProxy {
    /// Sends an interim response (not 101, which is final) to an HTTP/1.1 client.
    pub(super) async fn forward_interim(
        &self,
        session: &mut Session,
        interim: &ResponseHeader,
    ) -> Result<()> {
        if session.as_http1().is_none() {
            return Ok(());
        }
        let mut hints = interim.clone();
        policy::strip_hop_by_hop(&mut hints);
        session.set_ignore_info_resp(false);
        let written = session.write_response_header(Box::new(hints), false).await;
        // pingora passes the same interim response on after this filter: written once.
        session.set_ignore_info_resp(true);
        written
    }
}

/// Whether `resp` is an interim response to pass on: 1xx but not 101 Switching Protocols,
/// which ends the exchange as a final answer.
pub fn is_interim(resp: &ResponseHeader) -> bool {
    resp.status.is_informational() && resp.status != http::StatusCode::SWITCHING_PROTOCOLS
}
