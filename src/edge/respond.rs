//! Responses the node writes itself: rejects and proxy errors, short and never cached.

use super::route::Reject;
use crate::cache::LocalAnswer;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::HeaderValue;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// Writes a small plain-text response, with its `Cache-Status`, and ends it.
pub async fn local(
    session: &mut Session,
    status: u16,
    body: &'static str,
    cache_status: HeaderValue,
) -> Result<()> {
    local_with(session, status, body, cache_status, None).await
}

/// `local` with one more header field (`Retry-After`, `Location`).
pub async fn local_with(
    session: &mut Session,
    status: u16,
    body: &'static str,
    cache_status: HeaderValue,
    extra: Option<(http::HeaderName, String)>,
) -> Result<()> {
    let mut resp = ResponseHeader::build(status, Some(6))?;
    if let Some((name, value)) = extra {
        resp.insert_header(name, value)?;
    }
    resp.insert_header("cache-status", cache_status)?;
    resp.insert_header(CONTENT_TYPE, "text/plain; charset=utf-8")?;
    resp.insert_header(CONTENT_LENGTH, body.len())?;
    resp.insert_header(CACHE_CONTROL, "no-store")?;
    let is_head = session.req_header().method == http::Method::HEAD;
    // The request body, if any, was never read: the connection cannot carry another request.
    if !session.is_body_empty() {
        session.set_keepalive(None);
    }
    session
        .write_response_header(Box::new(resp), is_head)
        .await?;
    if !is_head {
        session
            .write_response_body(Some(Bytes::from_static(body.as_bytes())), true)
            .await?;
    }
    Ok(())
}

/// The body and `Cache-Status` reason of a request that has no route.
pub fn reject_answer(reject: Reject) -> (&'static str, LocalAnswer) {
    match reject {
        Reject::MissingHost => ("missing or invalid Host header\n", LocalAnswer::MissingHost),
        Reject::UnknownHost => (
            "this node serves no site for that host\n",
            LocalAnswer::UnknownHost,
        ),
        Reject::NoRoute => ("no route for this path\n", LocalAnswer::NoRoute),
        Reject::AmbiguousFraming => (
            "ambiguous message framing (Content-Length with Transfer-Encoding, or chunked twice): refused\n",
            LocalAnswer::AmbiguousFraming,
        ),
        Reject::BadTarget => (
            "the request target must be a path, an http(s) URL, or * for OPTIONS\n",
            LocalAnswer::BadRequest,
        ),
        Reject::BadPath(e) => (e.body(), LocalAnswer::BadRequest),
        Reject::MethodTooLong => ("method not implemented\n", LocalAnswer::Method),
        Reject::TraceNotAllowed => (
            "TRACE is not allowed on this route\n",
            LocalAnswer::Method,
        ),
    }
}

/// The status for a request that failed while proxying; 0 when the client is already gone.
pub fn status_for_error(e: &Error) -> u16 {
    match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
            if e.esource() == &ErrorSource::Upstream =>
        {
            504
        }
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            // limits.body_timeout: the client stopped sending its body.
            ErrorSource::Downstream if e.etype() == &ErrorType::ReadTimedout => 408,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

/// The body for an error status the proxy writes.
pub fn error_body(code: u16) -> &'static str {
    match code {
        400 => "bad request\n",
        408 => "request body not received in time\n",
        413 => "request body too large\n",
        502 => "no origin could answer this request\n",
        504 => "the origin did not answer in time\n",
        _ => "the request failed\n",
    }
}
