//! The systemd unit in contrib/systemd: valid to `systemd-analyze verify`, and as locked down
//! as docs/service.md says.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

use std::process::Command;

const UNIT: &str = include_str!("../contrib/systemd/meridian.service");

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    // verify checks that ExecStart's program exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("meridian.service");
    let text = UNIT.replace("/usr/local/bin/meridian", env!("CARGO_BIN_EXE_meridian"));
    std::fs::write(&unit, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze (Debian package systemd) runs the unit check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    assert!(
        !stderr.contains("meridian.service"),
        "warnings about the unit: {stderr}"
    );
}

#[test]
fn the_unit_runs_unprivileged_sandboxed_and_reloads_on_sighup() {
    let settings: Vec<&str> = UNIT
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    for wanted in [
        "User=meridian",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "ProtectHome=true",
        "PrivateTmp=true",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(settings.contains(&wanted), "the unit lacks {wanted}");
    }
    let start = settings
        .iter()
        .find(|l| l.starts_with("ExecStart="))
        .unwrap();
    assert!(
        start.contains("serve --config /etc/meridian/meridian.toml"),
        "{start}"
    );
}
