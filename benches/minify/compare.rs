//! The minifier comparison behind Meridian's choice, on the corpus in `benches/minify/corpus/`:
//! two candidates per language, each judged on output size (raw and after gzip -6), time,
//! and whether meaning survives (the output parses again; HTML keeps `<pre>`, `<textarea>`
//! and conditional comments; JavaScript behaves the same under node when it is installed).
//!
//!     cargo run --release --example compare_minifiers
//!
//! Build cost is not measured here: see `benches/minify/README.md`.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// A candidate minifier: a name and a function from source to output (`None`: it refused).
type Candidate = (&'static str, fn(&str) -> Option<String>);

fn meridian_html(s: &str) -> Option<String> {
    minify(meridian::transform::minify::Kind::Html, s)
}
fn meridian_css(s: &str) -> Option<String> {
    minify(meridian::transform::minify::Kind::Css, s)
}
fn meridian_js(s: &str) -> Option<String> {
    minify(meridian::transform::minify::Kind::Js, s)
}
fn minify(kind: meridian::transform::minify::Kind, s: &str) -> Option<String> {
    meridian::transform::minify::minify(kind, s.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}
fn html_minifier(s: &str) -> Option<String> {
    html_minifier::minify(s).ok()
}
fn minifier_css(s: &str) -> Option<String> {
    minifier::css::minify(s).ok().map(|m| m.to_string())
}
fn minifier_js(s: &str) -> Option<String> {
    minifier::js::minify(s).ok().map(|m| m.to_string())
}

fn gzip_len(s: &str) -> usize {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    let _ = e.write_all(s.as_bytes());
    e.finish().map_or(0, |v| v.len())
}

/// JavaScript whose meaning a careless minifier changes: ASI before a parenthesis, a regex
/// literal, a name read through `Function.prototype.name`, getters and string escapes.
const TRICKY_JS: &str = r#"
var log = []
var a = function (x) { return typeof x }
var b = a
(function () { return 2 })
var re = /ab+c\/d/g
function named() { return named.name }
var o = { get x() { return "get" }, "quoted key": 'it\'s' }
log.push(typeof b, re.source, named(), o.x, o["quoted key"], 1 / 0, 0.1 + 0.2)
console.log(JSON.stringify(log))
"#;

fn node_output(code: &str) -> Option<String> {
    let out = Command::new("node").arg("-e").arg(code).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn checks(kind: &str, source: &str, out: &str) -> String {
    match kind {
        "html" => {
            let mut notes = Vec::new();
            let pre = source
                .split("<pre class=\"code\">")
                .nth(1)
                .and_then(|p| p.split("</pre>").next());
            if pre.is_some_and(|p| !out.contains(p)) {
                notes.push("<pre> CHANGED");
            }
            if source.contains("  Keep   this") && !out.contains("  Keep   this\n    spacing  ") {
                notes.push("<textarea> CHANGED");
            }
            if source.contains("<!--[if") && !out.contains("<!--[if") {
                notes.push("conditional comment DROPPED");
            }
            if notes.is_empty() {
                "pre/textarea/conditional ok".into()
            } else {
                notes.join(", ")
            }
        }
        "css" => {
            let ok = lightningcss::stylesheet::StyleSheet::parse(
                out,
                lightningcss::stylesheet::ParserOptions::default(),
            )
            .is_ok();
            let ranges = out.contains("(width>=") || out.contains("(width<");
            format!(
                "{}{}",
                if ok { "parses" } else { "DOES NOT PARSE" },
                if ranges {
                    ", media ranges (Safari < 16.4 ignores)"
                } else {
                    ""
                }
            )
        }
        _ => match node_output(&format!(
            "new Function({})",
            serde_json::to_string(out).unwrap_or_default()
        )) {
            Some(_) => "node parses".into(),
            None if which_node() => "node: SYNTAX ERROR".into(),
            None => "node not installed".into(),
        },
    }
}

fn which_node() -> bool {
    Command::new("node").arg("--version").output().is_ok()
}

fn main() -> anyhow::Result<()> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/minify/corpus");
    let html: [Candidate; 2] = [
        ("minify-html (chosen)", meridian_html),
        ("html-minifier", html_minifier),
    ];
    let css: [Candidate; 2] = [
        ("lightningcss (chosen)", meridian_css),
        ("minifier::css", minifier_css),
    ];
    let js: [Candidate; 2] = [("oxc (chosen)", meridian_js), ("minifier::js", minifier_js)];
    let files: [(&str, &str, &[Candidate]); 4] = [
        ("catalogue.html", "html", &html),
        ("h5bp-404.html", "html", &html),
        ("bootstrap-5.3.3.css", "css", &css),
        ("jquery-3.7.1.js", "js", &js),
    ];
    println!("| file | minifier | bytes | % of source | gzip -6 bytes | ms | meaning |");
    println!("|---|---|---|---|---|---|---|");
    for (file, kind, candidates) in files {
        let source = std::fs::read_to_string(corpus.join(file))?;
        println!(
            "| {file} | (source) | {} | 100 | {} | | |",
            source.len(),
            gzip_len(&source)
        );
        for (name, f) in candidates {
            let started = Instant::now();
            let mut out = None;
            for _ in 0..5 {
                out = f(&source);
            }
            let ms = started.elapsed().as_secs_f64() * 1000.0 / 5.0;
            match out {
                Some(out) => println!(
                    "| {file} | {name} | {} | {:.1} | {} | {ms:.1} | {} |",
                    out.len(),
                    out.len() as f64 * 100.0 / source.len() as f64,
                    gzip_len(&out),
                    checks(kind, &source, &out)
                ),
                None => println!("| {file} | {name} | refused | | | {ms:.1} | |"),
            }
        }
    }
    println!();
    let expected = node_output(TRICKY_JS);
    for (name, f) in [
        ("oxc (chosen)", meridian_js as fn(&str) -> Option<String>),
        ("minifier::js", minifier_js),
    ] {
        let verdict = match (f(TRICKY_JS), &expected) {
            (None, _) => "refused".to_owned(),
            (Some(_), None) => "node not installed".to_owned(),
            (Some(out), Some(want)) => match node_output(&out) {
                Some(got) if &got == want => "same output as the source".to_owned(),
                Some(got) => format!("DIFFERENT: {} vs {}", got.trim(), want.trim()),
                None => "THROWS or does not parse".to_owned(),
            },
        };
        println!("tricky JavaScript under node, {name}: {verdict}");
    }
    Ok(())
}
