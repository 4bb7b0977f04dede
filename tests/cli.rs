//! The command line: `check` (the demo and the three example configurations), `serve`
//! refusing bad configs, `--version`, `--help` per command, completions and the man page.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

fn meridian(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("m.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn check_accepts_the_shipped_demo_config() {
    let out = meridian(&["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("conf/meridian.toml: ok"));
}

#[test]
fn check_prints_every_error_with_file_line_and_key_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let text = support::one_region(&["127.0.0.1:1".parse().unwrap()], "")
        .replace("@HTTP@", "127.0.0.1:80x")
        .replace("@ADMIN@", "127.0.0.1:9")
        .replace(
            "lat = 53.35, lon = -6.26 }\norigins",
            "lat = 153.35, lon = -6.26 }\norigins",
        )
        + "[cache]\nmemory = \"lots\"\n";
    let path = write_config(dir.path(), &text);
    let out = meridian(&["check", "--config", &path]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{path}:7:9: listen.http[0]")),
        "{err}"
    );
    assert!(
        err.contains("listen.http[0]: \"127.0.0.1:80x\" is not an address"),
        "{err}"
    );
    assert!(
        err.contains("regions[0].location.lat: latitude 153.35 is outside"),
        "{err}"
    );
    assert!(
        err.contains("cache.memory: \"lots\" is not a size"),
        "{err}"
    );
    assert!(err.contains("3 error(s)"), "{err}");
}

#[test]
fn check_suggests_the_closest_key_for_a_typo() {
    let dir = tempfile::tempdir().unwrap();
    let text = support::one_region(&["127.0.0.1:1".parse().unwrap()], "")
        .replace("@HTTP@", "127.0.0.1:1")
        .replace("@ADMIN@", "127.0.0.1:2")
        .replace("[admin]\ntoken", "[admin]\ntokne");
    let path = write_config(dir.path(), &text);
    let out = meridian(&["check", "--config", &path]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("admin.tokne: unknown key \"tokne\"; did you mean \"token\"?"),
        "{err}"
    );
}

#[test]
fn serve_refuses_to_start_on_an_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[node]\nname = \"x\"\n");
    let out = meridian(&["serve", "--config", &path]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("missing field `location`"), "{err}");
    assert!(err.contains("not starting"), "{err}");
}

#[test]
fn serve_refuses_a_taken_port_and_names_the_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = support::one_region(&["127.0.0.1:1".parse().unwrap()], "")
        .replace("@HTTP@", &taken.local_addr().unwrap().to_string())
        .replace("@ADMIN@", &support::node::free_addr().to_string());
    let path = write_config(dir.path(), &text);
    let out = meridian(&["serve", "--config", &path]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("listen.http[0]"), "{err}");
    assert!(err.contains("cannot listen"), "{err}");
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let out = meridian(&["check", "--config", "/nonexistent/meridian.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/meridian.toml: cannot read the configuration"));
}

#[test]
fn version_and_help_describe_the_binary() {
    let v = meridian(&["--version"]);
    assert!(v.status.success());
    assert_eq!(
        String::from_utf8_lossy(&v.stdout).trim(),
        format!("meridian {}", env!("CARGO_PKG_VERSION"))
    );
    let h = meridian(&["--help"]);
    let text = String::from_utf8_lossy(&h.stdout);
    assert!(text.contains("serve") && text.contains("check"), "{text}");
}

#[test]
fn the_one_machine_fleet_passes_check_and_its_edges_name_its_shields() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/fleet.md")).unwrap();
    for name in ["shield-1", "shield-2", "edge-1", "edge-2", "edge-3"] {
        let path = format!("conf/fleet/{name}.toml");
        let out = meridian(&["check", "--config", &path]);
        assert!(out.status.success(), "{path}: {}", stderr(&out));
        let text = std::fs::read_to_string(root.join(&path)).unwrap();
        if name.starts_with("edge") {
            assert!(
                text.contains("nodes = [\"127.0.0.1:8181\", \"127.0.0.1:8182\"]"),
                "{path} names both shields"
            );
        }
        assert!(page.contains(name), "docs/fleet.md runs {name}");
    }
}

#[test]
fn the_three_example_configurations_pass_check_and_each_has_its_page() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(root.join("conf/examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["cdn-node.toml", "failover-router.toml", "front-door.toml"]
    );
    for name in &names {
        let path = format!("conf/examples/{name}");
        let out = meridian(&["check", "--config", &path]);
        assert!(out.status.success(), "{path}: {}", stderr(&out));
        let page = root
            .join("docs/examples")
            .join(name.replace(".toml", ".md"));
        let text = std::fs::read_to_string(&page).unwrap();
        assert!(
            text.contains(&path),
            "{} does not link {path}",
            page.display()
        );
    }
}

#[test]
fn each_command_has_help_naming_its_options() {
    for (command, options) in [
        ("serve", &["--config", "--upgrade", "--upgrade-sock"][..]),
        ("check", &["--config"][..]),
        ("completions", &["bash", "zsh", "fish"][..]),
        ("manpage", &[][..]),
        ("config", &["publish"][..]),
        ("config publish", &["FILE", "shared_config"][..]),
    ] {
        let mut args = vec!["help"];
        args.extend(command.split(' '));
        let out = meridian(&args);
        assert!(out.status.success(), "help {command}: {}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        for option in options {
            assert!(
                text.contains(option),
                "help {command} lacks {option}:\n{text}"
            );
        }
    }
}

#[test]
fn completions_and_the_man_page_come_from_the_command_line_definition() {
    for (shell, marker) in [
        ("bash", "_meridian()"),
        ("zsh", "#compdef meridian"),
        ("fish", "complete -c meridian"),
    ] {
        let out = meridian(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(
            script.contains("upgrade-sock") && script.contains("check"),
            "{shell} completes every command and option"
        );
    }
    let out = meridian(&["manpage"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH meridian 1"), "{page}");
    for text in ["serve", "check", "SIGHUP"] {
        assert!(page.contains(text), "the man page lacks {text}");
    }
    let bad = meridian(&["completions", "tcsh"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn config_publish_needs_a_cluster_and_says_so_when_nats_cannot_be_reached() {
    let out = meridian(&["config", "publish", "conf/examples/front-door.toml"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("[cluster] needs a name and nats servers"),
        "{}",
        stderr(&out)
    );
    // A cluster whose NATS server is not there: an error naming the cluster, not a hang.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.toml");
    let text = std::fs::read_to_string("conf/fleet/edge-1.toml")
        .unwrap()
        .replace("127.0.0.1:4222", &format!("127.0.0.1:{port}"));
    std::fs::write(&path, text).unwrap();
    let out = meridian(&["config", "publish", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot publish to cluster \"demo\""),
        "{}",
        stderr(&out)
    );
}
