//! The documentation holds together: the README stays a short front door, links every page
//! of docs/, and no relative link in the README or docs/ points at a file that is not there.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn pages(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            pages(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// The targets of the inline links `[text](target)` in `text`.
fn links(text: &str) -> Vec<String> {
    text.match_indices("](")
        .filter_map(|(i, _)| {
            let rest = &text[i + 2..];
            rest.find(')').map(|end| rest[..end].to_owned())
        })
        .collect()
}

#[test]
fn the_readme_is_a_short_front_door() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 200,
        "README.md has {lines} lines; move detail to docs/"
    );
    for command in ["cargo run --release -- serve", "cargo test"] {
        assert!(
            readme.contains(&format!("```sh\n{command}\n```")),
            "README.md lacks its command {command}"
        );
    }
}

#[test]
fn every_page_of_docs_is_linked_from_the_readme() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let linked = links(&readme);
    let mut all = Vec::new();
    pages(&root().join("docs"), &mut all);
    assert!(all.len() >= 10, "docs/ has {} pages", all.len());
    for page in all {
        let relative = page
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            linked
                .iter()
                .any(|l| l.split('#').next() == Some(&relative)),
            "README.md does not link {relative}"
        );
    }
}

#[test]
fn relative_links_in_the_readme_and_docs_point_at_files_that_exist() {
    let mut files = vec![root().join("README.md")];
    pages(&root().join("docs"), &mut files);
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for link in links(&text) {
            let target = link.split('#').next().unwrap_or("");
            if target.is_empty() || target.contains("://") {
                continue;
            }
            let resolved = file.parent().unwrap().join(target);
            if !resolved.exists() {
                broken.push(format!("{}: {link}", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
