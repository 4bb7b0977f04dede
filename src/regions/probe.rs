//! The HTTP health probe: one request on pingora's connector, judged by status and body.
//!
//! pingora's own `HttpHealthCheck` drains the body unread; a check that looks for a string in
//! it ("status": "ok") needs to read it, so Meridian has this probe. TCP checks use pingora's.

use async_trait::async_trait;
use pingora::lb::health_check::HealthCheck as Probe;
use pingora::lb::Backend;
use pingora_core::connectors::http::Connector;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::RequestHeader;

/// Most of a health response body that is searched for `body_contains`.
const MAX_BODY: usize = 64 * 1024;

/// One origin's HTTP check.
pub struct HttpProbe {
    connector: Connector,
    peer: HttpPeer,
    req: RequestHeader,
    /// Healthy statuses; empty means any 2xx or 3xx (HAProxy's default).
    expect_status: Vec<u16>,
    body_contains: Option<Vec<u8>>,
}

impl HttpProbe {
    pub fn new(
        peer: HttpPeer,
        req: RequestHeader,
        expect_status: Vec<u16>,
        body_contains: Option<Vec<u8>>,
    ) -> Self {
        HttpProbe {
            connector: Connector::new(None),
            peer,
            req,
            expect_status,
            body_contains,
        }
    }

    fn status_ok(&self, status: u16) -> bool {
        if self.expect_status.is_empty() {
            (200..400).contains(&status)
        } else {
            self.expect_status.contains(&status)
        }
    }
}

#[async_trait]
impl Probe for HttpProbe {
    async fn check(&self, _target: &Backend) -> Result<()> {
        let (mut session, _reused) = self.connector.get_http_session(&self.peer).await?;
        session
            .write_request_header(Box::new(self.req.clone()))
            .await?;
        session.finish_request_body().await?;
        session.read_response_header().await?;
        let status = session.response_header().map_or(0, |r| r.status.as_u16());
        if !self.status_ok(status) {
            return Error::e_explain(
                ErrorType::CustomCode("unhealthy status", status),
                format!("health check answered {status}"),
            );
        }
        let Some(needle) = &self.body_contains else {
            return Ok(());
        };
        let mut body = Vec::new();
        while let Some(chunk) = session.read_response_body().await? {
            let room = MAX_BODY.saturating_sub(body.len());
            body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or(&[]));
            if body.len() >= MAX_BODY {
                break;
            }
        }
        if body
            .windows(needle.len().max(1))
            .any(|w| w == needle.as_slice())
        {
            Ok(())
        } else {
            Error::e_explain(
                ErrorType::Custom("unhealthy body"),
                format!(
                    "health check body does not contain {:?}",
                    String::from_utf8_lossy(needle)
                ),
            )
        }
    }

    fn health_threshold(&self, _success: bool) -> usize {
        // Meridian applies rise/fall itself; each probe reports one result.
        1
    }
}
