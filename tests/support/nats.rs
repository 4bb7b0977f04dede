//! A real `nats-server` with JetStream on a free loopback port, its store in a temporary
//! directory; killed on drop. Restarted on the same port and store, it keeps its streams.

use super::node::free_addr;
use super::patience;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

pub struct Nats {
    child: Option<Child>,
    pub addr: SocketAddr,
    store: tempfile::TempDir,
}

impl Nats {
    pub async fn start() -> Nats {
        let mut nats = Nats {
            child: None,
            addr: free_addr(),
            store: tempfile::tempdir().unwrap(),
        };
        nats.resume().await;
        nats
    }

    /// `nats://127.0.0.1:port`, for `[cluster] nats`.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// Starts the server (again) on its port and store, and waits until it accepts clients.
    pub async fn resume(&mut self) {
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.addr.port().to_string())
            .arg("-sd")
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (Debian package nats-server) is needed for the fleet tests");
        self.child = Some(child);
        let deadline = Instant::now() + patience();
        while TcpStream::connect(self.addr).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}
