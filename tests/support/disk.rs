//! Nodes with a disk tier: a config for one, waiting until it is open, filling it, and
//! stopping a node the way a restart does.

use super::{eventually, one_region, Node, Origin, Reply};
use std::path::Path;

/// The test site on one origin with `extra` (routes), and a disk tier in `dir`.
pub fn config_with(origin: &Origin, dir: &Path, extra: &str) -> String {
    one_region(
        &[origin.addr()],
        &format!(
            "{extra}\n[cache]\nmax_object = \"1MiB\"\n\n[cache.disk]\npath = {dir:?}\n\
             size = \"64MiB\"\n"
        ),
    )
}

/// The test site on one origin, with a disk tier in `dir`.
pub fn config(origin: &Origin, dir: &Path) -> String {
    config_with(origin, dir, "")
}

/// Starts a node on `config` and waits until its disk tier is open (it opens in the
/// background; until then the node serves from memory alone).
pub async fn start_ready(config: &str) -> Node {
    let node = Node::start(config).await;
    wait_ready(&node).await;
    node
}

pub async fn wait_ready(node: &Node) {
    eventually("the disk tier is ready", || async {
        node.status().await["cache"]["disk"]["ready"] == true
    })
    .await;
}

/// Asks for `path` (with `headers`) until the disk tier holds `objects` objects: the disk
/// takes a key on its second request once the first has completed in memory (a request that
/// follows a fill still being written does not count).
pub async fn store_on_disk_with(node: &Node, path: &str, headers: &[(&str, &str)], objects: f64) {
    eventually("the disk tier holds the object", || async {
        assert_eq!(node.get(path, headers).await.status(), 200);
        node.metric("meridian_disk_cache_objects").await >= objects
    })
    .await;
}

pub async fn store_on_disk(node: &Node, path: &str, objects: f64) {
    store_on_disk_with(node, path, &[], objects).await;
}

/// An origin serving each body at its path, cacheable for an hour.
pub async fn cacheable_origin(routes: &[(&str, Vec<u8>)]) -> Origin {
    routes
        .iter()
        .fold(Origin::builder(), |o, (path, body)| {
            o.route(
                path,
                Reply::ok(body.clone()).header("cache-control", "max-age=3600"),
            )
        })
        .start()
        .await
}

/// SIGTERM, and waits until the node has exited.
pub async fn stop(mut node: Node) {
    node.signal("TERM");
    eventually("the node stops", || {
        let exited = node.exited();
        async move { exited }
    })
    .await;
}

/// SIGKILL (a crash: no checkpoint, no flush), and waits until the node has exited.
pub async fn kill(mut node: Node) {
    node.signal("KILL");
    eventually("the node is gone", || {
        let exited = node.exited();
        async move { exited }
    })
    .await;
}

/// One object on a disk tier, and a node started again on it (its memory empty).
pub struct Restarted {
    pub origin: Origin,
    pub dir: tempfile::TempDir,
    pub node: Node,
}

/// An origin serving `reply` at `path`; a node that stored it on disk, stopped; and a node
/// started again on the same directory, ready.
pub async fn restarted_with(path: &str, reply: Reply) -> Restarted {
    let origin = Origin::builder().route(path, reply).start().await;
    let dir = tempfile::tempdir().unwrap();
    let node = start_ready(&config(&origin, dir.path())).await;
    store_on_disk(&node, path, 1.0).await;
    stop(node).await;
    let node = start_ready(&config(&origin, dir.path())).await;
    Restarted { origin, dir, node }
}

/// `len` letters of the alphabet, over and over: every range of it is recognisable.
pub fn alphabet(len: u32) -> String {
    (0..len)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}
