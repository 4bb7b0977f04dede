//! Configuration reload: validated first (an invalid file changes nothing and says why),
//! applied whole on SIGHUP or `POST /reload`, refused for keys that take a restart.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use support::{eventually, one_region, plain_client, Node, Origin, Reply};

async fn post_reload(node: &Node) -> (u16, serde_json::Value) {
    node.admin_post("/reload", Some("test-token")).await
}

#[tokio::test]
async fn an_invalid_config_leaves_the_old_one_and_a_valid_one_applies_on_sighup() {
    let origin = Origin::builder()
        .route("/", Reply::ok("home").header("cache-control", "no-store"))
        .route(
            "/new/x",
            Reply::ok("new route").header("cache-control", "no-store"),
        )
        .start()
        .await;
    let base = one_region(&[origin.addr()], "");
    let node = Node::start(&base).await;
    assert_eq!(node.get("/", &[]).await.status(), 200);

    // A route over a region that does not exist: refused with the file, key and reason.
    let invalid = format!("{base}[[sites.routes]]\npath = \"/new/\"\nregions = [\"mars\"]\n");
    node.write_config(&invalid);
    let (status, body) = post_reload(&node).await;
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("meridian.toml") && error.contains("regions"),
        "{error}"
    );
    assert!(error.contains("mars"), "{error}");
    assert_eq!(
        node.get("/", &[]).await.status(),
        200,
        "the old config still serves"
    );
    assert_eq!(
        node.metric("meridian_config_reloads_total{result=\"failed\"}")
            .await,
        1.0
    );

    // A valid change (a new route with a body limit, a tighter URI limit) takes effect on
    // SIGHUP.
    let valid = format!(
        "{base}[[sites.routes]]\npath = \"/new/\"\nmax_request_body = \"1KiB\"\n\n\
         [limits]\nmax_uri_bytes = \"100B\"\n"
    );
    node.write_config(&valid);
    node.signal("HUP");
    eventually("SIGHUP applied the new config", || async {
        node.metric("meridian_config_reloads_total{result=\"ok\"}")
            .await
            == 1.0
    })
    .await;
    let long = format!("/{}", "a".repeat(120));
    assert_eq!(
        node.get(&long, &[]).await.status(),
        414,
        "new [limits] in force"
    );
    let resp = node
        .client(&[support::HOST])
        .post(node.url(support::HOST, "/new/x"))
        .body(vec![b'b'; 2048])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413, "the new route's body limit is in force");
    assert_eq!(
        node.get("/new/x", &[]).await.text().await.unwrap(),
        "new route"
    );
}

#[tokio::test]
async fn a_reload_that_needs_a_restart_is_refused_and_names_the_keys() {
    let origin = Origin::builder()
        .route("/", Reply::ok("home").header("cache-control", "no-store"))
        .start()
        .await;
    let base = one_region(&[origin.addr()], "");
    let node = Node::start(&base).await;
    let moved = base.replace("threads = 2", "threads = 1");
    node.write_config(&moved);
    let (status, body) = post_reload(&node).await;
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("node.threads") && error.contains("restart"),
        "{error}"
    );
    assert_eq!(node.get("/", &[]).await.status(), 200);

    // Without the token a reload is refused before the file is read.
    let resp = plain_client()
        .post(format!("http://{}/reload", node.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}
