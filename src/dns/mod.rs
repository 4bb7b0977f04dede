//! The authoritative geo-DNS server: hickory's UDP and TCP server around Meridian's handler,
//! run as a pingora background service beside the proxy, reading the same health view.

pub mod ecs;
pub mod geo_answer;
pub mod handler;
mod status;
pub mod zone;

pub use handler::{DnsHandler, SharedHandler};

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// TCP responses queued per connection before the writer pushes back.
const TCP_RESPONSE_BUFFER: usize = 32;

/// Sockets bound at startup (so a taken port is a startup error), served once the service runs.
pub struct DnsService {
    handler: Arc<DnsHandler>,
    sockets: Mutex<Option<Sockets>>,
    tcp_idle_timeout: Duration,
}

/// The bound listeners, UDP and TCP on each configured address.
pub struct Sockets {
    pub udp: Vec<std::net::UdpSocket>,
    pub tcp: Vec<std::net::TcpListener>,
}

impl DnsService {
    pub fn new(handler: Arc<DnsHandler>, sockets: Sockets, tcp_idle_timeout: Duration) -> Self {
        DnsService {
            handler,
            sockets: Mutex::new(Some(sockets)),
            tcp_idle_timeout,
        }
    }
}

#[async_trait]
impl BackgroundService for DnsService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let taken = match self.sockets.lock() {
            Ok(mut guard) => guard.take(),
            Err(_) => None,
        };
        let Some(sockets) = taken else {
            log::error!("dns: started twice; the sockets are already served");
            return;
        };
        let mut server = hickory_server::Server::new(SharedHandler(self.handler.clone()));
        for socket in sockets.udp {
            match tokio::net::UdpSocket::from_std(socket) {
                Ok(s) => server.register_socket(s),
                Err(e) => log::error!("dns: cannot serve a UDP socket: {e}"),
            }
        }
        for listener in sockets.tcp {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => server.register_listener(l, self.tcp_idle_timeout, TCP_RESPONSE_BUFFER),
                Err(e) => log::error!("dns: cannot serve a TCP listener: {e}"),
            }
        }
        tokio::select! {
            _ = shutdown.changed() => {
                if let Err(e) = server.shutdown_gracefully().await {
                    log::warn!("dns: shutdown: {e}");
                }
            }
            result = server.block_until_done() => {
                if let Err(e) = result {
                    log::error!("dns: server stopped: {e}");
                }
            }
        }
    }
}

/// Binds UDP and TCP on `addr`, non-blocking, ready for tokio.
pub fn bind(
    addr: std::net::SocketAddr,
) -> std::io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    let udp = std::net::UdpSocket::bind(addr)?;
    udp.set_nonblocking(true)?;
    let tcp = std::net::TcpListener::bind(addr)?;
    tcp.set_nonblocking(true)?;
    Ok((udp, tcp))
}
