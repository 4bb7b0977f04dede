//! `[cache.disk]`: what `meridian check` refuses before a node would start on it.

use super::*;

fn with_disk(table: &str) -> String {
    format!("{MINIMAL}\n[cache]\nmax_object = \"8MiB\"\n\n[cache.disk]\n{table}\n")
}

#[test]
fn a_valid_disk_tier_reaches_the_runtime_model_with_its_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let text = with_disk(&format!("path = {:?}\nsize = \"256MiB\"", dir.path()));
    let rt = parse_str(&text).unwrap();
    let disk = rt.cache.disk.unwrap();
    assert_eq!(disk.path, dir.path());
    assert_eq!(disk.size, 256 << 20);
    assert_eq!(disk.max_object, 16 << 20, "size / 16 by default");
    assert!(
        parse_str(MINIMAL).unwrap().cache.disk.is_none(),
        "memory only"
    );
}

#[test]
fn a_path_that_is_not_a_writable_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    for path in [dir.path().join("missing"), file] {
        let e = one_error(&with_disk(&format!("path = {path:?}\nsize = \"64MiB\"")));
        assert_eq!(e.key, "cache.disk.path");
        assert!(e.reason.contains("is not a directory"), "{e:?}");
    }
}

#[test]
fn a_size_past_the_free_space_is_refused_but_what_the_tier_holds_counts_as_free() {
    let dir = tempfile::tempdir().unwrap();
    let e = one_error(&with_disk(&format!(
        "path = {:?}\nsize = \"1000PiB\"\nmax_object = \"8MiB\"",
        dir.path()
    )));
    assert_eq!(e.key, "cache.disk.size");
    assert!(e.reason.contains("room"), "{e:?}");

    let fs = nix::sys::statvfs::statvfs(dir.path()).unwrap();
    let free = fs.blocks_available() * fs.fragment_size();
    // A segment file the tier wrote earlier: its bytes are the tier's to reuse.
    let held = std::fs::File::create(dir.path().join("0000000001.seg")).unwrap();
    held.set_len(64 << 20).unwrap();
    let size = free + (32 << 20);
    let text = with_disk(&format!("path = {:?}\nsize = \"{size}B\"", dir.path()));
    assert!(parse_str(&text).is_ok(), "free space plus what it holds");
}

#[test]
fn a_disk_max_object_below_the_memory_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = one_error(&with_disk(&format!(
        "path = {:?}\nsize = \"64MiB\"\nmax_object = \"1MiB\"",
        dir.path()
    )));
    assert_eq!(e.key, "cache.disk.max_object");
    assert!(e.reason.contains("less than cache.max_object"), "{e:?}");
}

#[test]
fn with_a_disk_tier_the_memory_max_object_takes_a_restart_and_without_one_it_reloads() {
    use crate::config::reload::restart_only_changes;
    let dir = tempfile::tempdir().unwrap();
    let disk = format!("path = {:?}\nsize = \"256MiB\"", dir.path());
    let old = parse_str(&with_disk(&disk)).unwrap();
    let new = parse_str(&with_disk(&disk).replace("\"8MiB\"", "\"4MiB\"")).unwrap();
    assert_eq!(restart_only_changes(&old, &new), ["cache.max_object"]);
    let memory_only = |v: &str| parse_str(&format!("{MINIMAL}\n[cache]\nmax_object = \"{v}\"\n"));
    let (old, new) = (memory_only("8MiB").unwrap(), memory_only("4MiB").unwrap());
    assert!(restart_only_changes(&old, &new).is_empty());
}
