//! Purges fanned out through NATS JetStream (issue 16): a purge on any node, in every mode,
//! is gone on every node once answered 200; NATS unreachable means 503 and the purge applied
//! here; a node that missed purges replays them before it serves what it had on disk.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use support::nats::Nats;
use support::{disk, eventually, header, one_region, Node, Origin, Reply};

fn origin() -> support::origin::OriginBuilder {
    let cached = |tag: &str| {
        Reply::ok("object")
            .header("cache-control", "max-age=300")
            .header("surrogate-key", tag)
    };
    Origin::builder()
        .route("/a/1", cached("red"))
        .route("/a/2", cached("red"))
        .route("/b/1", cached("blue"))
}

/// `[cluster]` "prod" on `nats`, for a node named `name`.
fn cluster_table(nats: &Nats) -> String {
    format!(
        "[cluster]\nname = \"prod\"\nnats = [\"{}\"]\npurge_timeout = \"1s\"\n",
        nats.url()
    )
}

fn named(config: String, name: &str) -> String {
    config.replace("name = \"edge-test\"", &format!("name = \"{name}\""))
}

async fn node(name: &str, origin: &Origin, nats: &Nats) -> Node {
    let node = Node::start(&named(
        one_region(&[origin.addr()], &cluster_table(nats)),
        name,
    ))
    .await;
    subscribed(&node).await;
    node
}

/// Until the node's durable consumer exists (purges published before it would not be its).
async fn subscribed(node: &Node) {
    eventually("the node has its purge consumer", || async {
        node.status().await["cluster"]["purges"]["subscribed"] == true
    })
    .await;
}

async fn purge(node: &Node, query: &str) -> (u16, serde_json::Value) {
    node.admin_post(&format!("/purge?{query}"), Some("test-token"))
        .await
}

/// Whether `path` is stored on `node` right now (a hit), asked without refilling it: an
/// `only-if-cached` request is answered 504 when nothing is stored.
async fn stored(node: &Node, path: &str) -> bool {
    let resp = node.get(path, &[("cache-control", "only-if-cached")]).await;
    match resp.status().as_u16() {
        200 => true,
        504 => false,
        other => panic!("{path}: status {other}"),
    }
}

async fn fill(nodes: &[&Node], paths: &[&str]) {
    for node in nodes {
        for path in paths {
            assert_eq!(node.get(path, &[]).await.status(), 200);
            assert!(stored(node, path).await, "{path} is stored after a fill");
        }
    }
}

#[tokio::test]
async fn a_purge_in_every_mode_on_one_node_is_applied_once_on_every_node() {
    let nats = Nats::start().await;
    let origin = origin().start().await;
    let a = node("edge-a", &origin, &nats).await;
    let b = node("edge-b", &origin, &nats).await;
    let c = node("edge-c", &origin, &nats).await;
    let nodes = [&a, &b, &c];
    let all = ["/a/1", "/a/2", "/b/1"];
    // (query, on which node, what must be gone, what must stay)
    let cases: [(&str, &Node, &[&str], &[&str]); 4] = [
        (
            "url=http://test.local/a/1",
            &b,
            &["/a/1"],
            &["/a/2", "/b/1"],
        ),
        (
            "prefix=http://test.local/a/",
            &c,
            &["/a/1", "/a/2"],
            &["/b/1"],
        ),
        ("tag=blue", &a, &["/b/1"], &["/a/1", "/a/2"]),
        ("all=1", &b, &all, &[]),
    ];
    for (round, (query, on, gone, kept)) in cases.into_iter().enumerate() {
        fill(&nodes, &all).await;
        let (status, body) = purge(on, query).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(body["cluster"], "prod");
        for node in nodes {
            eventually(&format!("{query} reaches every node"), || async {
                node.metric("meridian_cluster_purges_applied_total").await == (round + 1) as f64
            })
            .await;
            for path in gone {
                assert!(!stored(node, path).await, "{query}: {path} is gone");
            }
            for path in kept {
                assert!(stored(node, path).await, "{query}: {path} stays");
            }
        }
    }
    // Each node got its own purges back from the stream, and skipped them by id.
    assert_eq!(
        a.metric("meridian_cluster_purges_duplicate_total").await,
        1.0
    );
    assert_eq!(
        b.metric("meridian_cluster_purges_duplicate_total").await,
        2.0
    );
    assert_eq!(
        a.metric("meridian_cluster_purges_published_total{result=\"acked\"}")
            .await,
        1.0
    );

    // Soft: still stored, but stale everywhere (the next request revalidates).
    fill(&nodes, &all).await;
    let (status, _) = purge(&a, "url=http://test.local/a/2&soft=1").await;
    assert_eq!(status, 200);
    for node in nodes {
        eventually("the soft purge reaches every node", || async {
            node.metric("meridian_cluster_purges_applied_total").await == 5.0
        })
        .await;
        let resp = node.get("/a/2", &[]).await;
        let status = header(&resp, "cache-status");
        assert!(
            status.contains("fwd=stale"),
            "revalidated after a soft purge: {status}"
        );
    }
    let lag = a.status().await["cluster"]["purges"]["last_lag_seconds"]
        .as_f64()
        .unwrap();
    assert!(lag >= 0.0);
}

#[tokio::test]
async fn with_nats_down_a_purge_is_503_applied_here_and_once_nats_is_back_purges_flow_again() {
    let mut nats = Nats::start().await;
    let origin = origin().start().await;
    let a = node("edge-a", &origin, &nats).await;
    let b = node("edge-b", &origin, &nats).await;
    fill(&[&a, &b], &["/a/1", "/b/1"]).await;
    nats.kill();
    let (status, body) = purge(&a, "url=http://test.local/a/1").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("applied on this node only"),
        "{body}"
    );
    assert!(
        !stored(&a, "/a/1").await,
        "applied on the node that took it"
    );
    assert!(stored(&b, "/a/1").await, "the other node never heard of it");
    assert_eq!(
        a.metric("meridian_cluster_purges_published_total{result=\"timeout\"}")
            .await,
        1.0
    );

    nats.resume().await;
    eventually("a purge is acknowledged again", || async {
        purge(&a, "tag=blue").await.0 == 200
    })
    .await;
    eventually("and reaches the other node", || async {
        !stored(&b, "/b/1").await
    })
    .await;
}

/// Starts a node named `name` with a disk tier in `dir`.
async fn disk_node(name: &str, origin: &Origin, dir: &Path, nats: &Nats) -> Node {
    let config = named(disk::config_with(origin, dir, &cluster_table(nats)), name);
    let node = Node::start(&config).await;
    disk::wait_ready(&node).await;
    node
}

#[tokio::test]
async fn a_node_that_missed_purges_replays_them_before_it_serves_from_its_disk() {
    let nats = Nats::start().await;
    let origin = origin().start().await;
    let a = node("edge-a", &origin, &nats).await;
    let dir = tempfile::tempdir().unwrap();
    let b = disk_node("edge-b", &origin, dir.path(), &nats).await;
    subscribed(&b).await;
    disk::store_on_disk(&b, "/a/1", 1.0).await;
    disk::store_on_disk(&b, "/a/2", 2.0).await;
    disk::stop(b).await;

    // While edge-b is down: two purges, each answered 200 (stored by JetStream).
    assert_eq!(purge(&a, "url=http://test.local/a/1").await.0, 200);
    assert_eq!(purge(&a, "url=http://test.local/b/9").await.0, 200);
    let before = origin.hits("/a/1");

    let b = disk_node("edge-b", &origin, dir.path(), &nats).await;
    // Its first answers come after the replay: /a/1 is never served from disk again.
    let resp = b.get("/a/1", &[]).await;
    assert_eq!(resp.status(), 200);
    let status = header(&resp, "cache-status");
    assert!(
        !status.contains("hit"),
        "a purged object is not served: {status}"
    );
    assert_eq!(origin.hits("/a/1"), before + 1);
    eventually("edge-b applied both purges it missed", || async {
        b.metric("meridian_cluster_purges_applied_total").await == 2.0
    })
    .await;
    // And once caught up, what it kept on disk is served from disk.
    eventually("the disk tier serves again", || async {
        b.status().await["cluster"]["purges"]["disk_held"] == false
    })
    .await;
    let resp = b.get("/a/2", &[]).await;
    assert_eq!(header(&resp, "cache-status"), "edge-b; hit; detail=disk");
}

/// Runs `meridian config publish` on `config` (a whole file); returns its exit status and
/// output.
fn publish(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("published.toml");
    std::fs::write(&path, config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["config", "publish"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A whole configuration to publish: the test site, a second site on `new.test`, and the
/// region `region` on `origin` (its [node] and [listen] are not published).
fn to_publish(origin: &Origin, nats: &Nats, region: &str) -> String {
    one_region(
        &[origin.addr()],
        &format!(
            "{}[[sites]]\nname = \"new\"\nhosts = [\"new.test\"]\n[[sites.routes]]\npath = \"/\"\n",
            cluster_table(nats)
        ),
    )
    .replace("eu-west", region)
    .replace("@HTTP@", "127.0.0.1:1")
    .replace("@ADMIN@", "127.0.0.1:2")
}

async fn shared_node(name: &str, origin: &Origin, nats: &Nats) -> Node {
    let table = format!("{}shared_config = true\n", cluster_table(nats));
    Node::start(&named(one_region(&[origin.addr()], &table), name)).await
}

async fn get_on(node: &Node, host: &str) -> u16 {
    node.client(&[host])
        .get(node.url(host, "/a/1"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn shared_status(node: &Node) -> serde_json::Value {
    node.status().await["cluster"]["shared_config"].clone()
}

#[tokio::test]
async fn a_published_configuration_is_applied_on_every_node_and_one_a_node_refuses_is_reported() {
    let nats = Nats::start().await;
    let origin = origin().start().await;
    let a = shared_node("edge-a", &origin, &nats).await;
    let b = shared_node("edge-b", &origin, &nats).await;
    assert_eq!(get_on(&a, "new.test").await, 421, "no such site yet");

    // An invalid file is refused by the command and publishes nothing.
    let (ok, out) = publish("[node]\nname = \"x\"\n");
    assert!(!ok, "{out}");

    let (ok, out) = publish(&to_publish(&origin, &nats, "eu-west"));
    assert!(ok, "{out}");
    assert!(out.contains("revision 1"), "{out}");
    for node in [&a, &b] {
        eventually("revision 1 is in force", || async {
            shared_status(node).await["revision"] == 1
        })
        .await;
        assert_eq!(get_on(node, "new.test").await, 200);
        assert_eq!(get_on(node, support::HOST).await, 200, "its own sites too");
        assert_eq!(node.metric("meridian_cluster_config_revision").await, 1.0);
    }
    // A node's own reload keeps the published part.
    assert_eq!(a.admin_post("/reload", Some("test-token")).await.0, 200);
    assert_eq!(get_on(&a, "new.test").await, 200);

    // Renaming the region takes a restart: running nodes refuse it and keep revision 1.
    let (ok, out) = publish(&to_publish(&origin, &nats, "eu-central"));
    assert!(ok && out.contains("revision 2"), "{out}");
    for node in [&a, &b] {
        eventually("revision 2 is refused", || async {
            shared_status(node).await["refused"]["revision"] == 2
        })
        .await;
        let status = shared_status(node).await;
        assert_eq!(status["revision"], 1);
        let error = status["refused"]["error"].as_str().unwrap().to_owned();
        assert!(error.contains("regions"), "{error}");
        assert_eq!(
            node.metric("meridian_cluster_config_refused_total").await,
            1.0
        );
        assert_eq!(
            get_on(node, "new.test").await,
            200,
            "the last good one serves"
        );
    }
    // A node started now starts on it.
    disk::stop(b).await;
    let b = shared_node("edge-b", &origin, &nats).await;
    assert_eq!(shared_status(&b).await["revision"], 2);
    assert_eq!(b.status().await["regions"][0]["name"], "eu-central");
    assert_eq!(get_on(&b, "new.test").await, 200);
}
