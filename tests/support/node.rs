//! Runs the real `meridian` binary on free loopback ports; kills it on drop.

use super::patience;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// A free port on 127.0.0.1. The listener is dropped at once, so another process could take
/// the port before the node binds it; the OS cycles ephemeral ports, which makes that rare.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `N` distinct free ports on 127.0.0.1: all are held until all are chosen, so two calls
/// cannot return the same port (as two `free_addr` calls in a row can).
pub fn free_addrs<const N: usize>() -> [SocketAddr; N] {
    let held: [TcpListener; N] = std::array::from_fn(|_| TcpListener::bind("127.0.0.1:0").unwrap());
    held.map(|l| l.local_addr().unwrap())
}

/// A free port on 127.0.0.1 for both UDP and TCP (DNS listens on both).
pub fn free_dns_addr() -> SocketAddr {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
}

/// A running node.
pub struct Node {
    child: Child,
    pub http: SocketAddr,
    pub admin: SocketAddr,
    /// Where `@DNS@` pointed (unused when the config has no `[dns]`).
    pub dns: SocketAddr,
    dir: tempfile::TempDir,
}

impl Node {
    /// Starts the node on `config`, where `@HTTP@`, `@ADMIN@` and `@DNS@` stand for free
    /// addresses, and waits until its listeners answer.
    pub async fn start(config: &str) -> Node {
        Node::start_wrapped(config, &[]).await
    }

    /// As [`start`](Self::start), with the binary run by `wrapper` (a command and its
    /// arguments, to which the binary and its arguments are appended): a test that needs the
    /// node in a namespace of its own (a small filesystem, say) says how.
    pub async fn start_wrapped(config: &str, wrapper: &[String]) -> Node {
        Node::start_full(config, wrapper, None).await
    }

    /// As [`start`](Self::start), with its http listener on `http` (chosen beforehand, so
    /// that another node's config could name it).
    pub async fn start_on(config: &str, http: SocketAddr) -> Node {
        Node::start_full(config, &[], Some(http)).await
    }

    async fn start_full(config: &str, wrapper: &[String], http: Option<SocketAddr>) -> Node {
        // Distinct from each other and from any address the test already put in the config
        // (an HTTPS listener or an origin it chose with `free_addr`).
        let taken = |a: &SocketAddr| config.contains(&a.to_string()) || Some(*a) == http;
        let [chosen, admin] = loop {
            let pair = free_addrs();
            if !pair.iter().any(taken) {
                break pair;
            }
        };
        let http = http.unwrap_or(chosen);
        let dns = loop {
            let dns = free_dns_addr();
            if dns != http && dns != admin && !taken(&dns) {
                break dns;
            }
        };
        let with_dns = config.contains("@DNS@");
        let text = config
            .replace("@HTTP@", &http.to_string())
            .replace("@ADMIN@", &admin.to_string())
            .replace("@DNS@", &dns.to_string());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meridian.toml");
        std::fs::write(&path, text).unwrap();
        // Each node hands its sockets over on its own Unix socket (graceful upgrade).
        let binary = env!("CARGO_BIN_EXE_meridian").to_string();
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&binary);
                c
            }
            None => Command::new(&binary),
        };
        let child = command
            .args(["serve", "--config"])
            .arg(&path)
            .arg("--upgrade-sock")
            .arg(dir.path().join("upgrade.sock"))
            .env("RUST_LOG", "warn")
            .stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut node = Node {
            child,
            http,
            admin,
            dns,
            dir,
        };
        node.wait_ready(with_dns).await;
        node
    }

    async fn wait_ready(&mut self, with_dns: bool) {
        let deadline = Instant::now() + patience();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "meridian exited with {status} before it was ready:\n{}",
                    self.stderr()
                );
            }
            let http_up = TcpStream::connect(self.http).is_ok()
                && (!with_dns || TcpStream::connect(self.dns).is_ok());
            let admin_up = super::plain_client()
                .get(format!("http://{}/healthz", self.admin))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if http_up && admin_up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "meridian did not become ready:\n{}",
                self.stderr()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Replaces the node's configuration file (same placeholders as `start`); the node
    /// reads it on its next reload.
    pub fn write_config(&self, config: &str) {
        let text = config
            .replace("@HTTP@", &self.http.to_string())
            .replace("@ADMIN@", &self.admin.to_string())
            .replace("@DNS@", &self.dns.to_string());
        std::fs::write(self.dir.path().join("meridian.toml"), text).unwrap();
    }

    /// Starts a second process on this node's config that takes its listening sockets over
    /// (`serve --upgrade`); the caller then sends this node SIGQUIT.
    pub fn spawn_successor(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_meridian"))
            .args(["serve", "--upgrade", "--config"])
            .arg(self.dir.path().join("meridian.toml"))
            .arg("--upgrade-sock")
            .arg(self.dir.path().join("upgrade.sock"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("successor.log")).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// What the successor process logged.
    pub fn successor_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("successor.log")).unwrap_or_default()
    }

    /// The process has exited (after SIGQUIT, say).
    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Sends a signal (e.g. "HUP") to the node.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// The node's log (stderr).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// The node's access log (stdout), one JSON object per line.
    pub fn access_log(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.stdout_path())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn stdout_path(&self) -> PathBuf {
        self.dir.path().join("stdout.log")
    }

    /// `http://<host>:<port><path>` for the node's first HTTP listener.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.http.port())
    }

    /// A client that resolves every test host name to the node.
    pub fn client(&self, hosts: &[&str]) -> reqwest::Client {
        let mut b = reqwest::Client::builder().no_proxy();
        for h in hosts {
            b = b.resolve(h, self.http);
        }
        b.build().unwrap()
    }

    /// GETs `path` on the test site with extra request headers.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.client(&[super::HOST]).get(self.url(super::HOST, path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// The admin endpoint's `/status`, parsed.
    pub async fn status(&self) -> serde_json::Value {
        let text = super::plain_client()
            .get(format!("http://{}/status", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// `POST target` (path and query) to the admin API with the test configs' token
    /// (`None`: without one); returns the status and the JSON body.
    pub async fn admin_post(&self, target: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = super::plain_client().post(format!("http://{}{target}", self.admin));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (
            status,
            serde_json::from_str(&resp.text().await.unwrap()).unwrap(),
        )
    }

    /// The admin endpoint's `/metrics` text.
    pub async fn metrics(&self) -> String {
        super::plain_client()
            .get(format!("http://{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of one exact series line in `/metrics`. A missing series fails the test
    /// (a renamed metric or label must not read as 0), naming the series of that metric
    /// that do exist.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics().await;
        if let Some(v) = text
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        {
            return v.trim().parse().unwrap();
        }
        let name = series.split('{').next().unwrap_or(series);
        let similar: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#') && l.starts_with(name))
            .collect();
        panic!("no series {series} in /metrics; series of {name}: {similar:#?}");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- meridian log ---\n{}", self.stderr());
        }
    }
}
