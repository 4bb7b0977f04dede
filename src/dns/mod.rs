//! The authoritative geo-DNS server: hickory's UDP and TCP server around Meridian's handler,
//! run as a pingora background service beside the proxy, reading the same health view.

pub mod ecs;
pub mod geo_answer;
pub mod handler;
mod status;
mod udp;
pub mod zone;

pub use handler::{DnsHandler, SharedHandler};

/// The handler for the zones in force, replaced whole when a reload changes them.
pub type LiveHandler = Arc<arc_swap::ArcSwap<DnsHandler>>;

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// TCP responses queued per connection before the writer pushes back.
const TCP_RESPONSE_BUFFER: usize = 32;

/// Sockets bound at startup (so a taken port is a startup error), served once the service runs.
pub struct DnsService {
    handler: LiveHandler,
    sockets: Mutex<Option<Sockets>>,
    tcp_idle_timeout: Duration,
}

/// The bound listeners, UDP and TCP on each configured address.
pub struct Sockets {
    pub udp: Vec<std::net::UdpSocket>,
    pub tcp: Vec<std::net::TcpListener>,
}

impl DnsService {
    pub fn new(handler: LiveHandler, sockets: Sockets, tcp_idle_timeout: Duration) -> Self {
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
        // UDP: Meridian's batched loop, a thread per socket (gdnsd's model): the loop keeps
        // its syscall headers across batches, which ties it to one thread.
        let mut udp_threads = Vec::new();
        for (i, socket) in sockets.udp.into_iter().enumerate() {
            match udp::spawn(i, socket, self.handler.clone(), shutdown.clone()) {
                Ok(thread) => udp_threads.push(thread),
                Err(e) => log::error!("dns: cannot start a UDP thread: {e}"),
            }
        }
        // TCP: hickory's server, calling the same handler.
        let mut server = hickory_server::Server::new(SharedHandler(self.handler.clone()));
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
        for thread in udp_threads {
            if tokio::task::spawn_blocking(move || thread.join())
                .await
                .is_err()
            {
                log::error!("dns: a UDP thread ended abnormally");
            }
        }
    }
}

/// Binds `udp_sockets` UDP sockets (sharing the port through SO_REUSEPORT, so the kernel
/// spreads datagrams over the DNS threads) and one TCP listener on `addr`, non-blocking.
/// SO_REUSEPORT is also what lets a gracefully upgrading process bind beside the old one.
pub fn bind(
    addr: SocketAddr,
    udp_sockets: usize,
) -> io::Result<(Vec<std::net::UdpSocket>, std::net::TcpListener)> {
    let mut udp = Vec::with_capacity(udp_sockets);
    for _ in 0..udp_sockets.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        // Also lets a process taking over (graceful upgrade) bind beside the old one.
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        udp.push(socket.into());
    }
    let tcp = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    tcp.set_reuse_address(true)?;
    tcp.set_reuse_port(true)?;
    tcp.set_nonblocking(true)?;
    tcp.bind(&addr.into())?;
    tcp.listen(1024)?;
    Ok((udp, tcp.into()))
}
