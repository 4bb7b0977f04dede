//! Minification of HTML, CSS and JavaScript bodies, once, at cache fill.
//!
//! Well-kept parsers, not home-made ones (compared in `benches/minify/`): minify-html for
//! HTML (its inline `<style>` and `<script>` through the two below), lightningcss for CSS
//! and oxc for JavaScript. Anything a minifier cannot parse, or any panic inside one, leaves
//! the body exactly as the origin sent it; the caller counts it.

use lightningcss::stylesheet::{MinifyOptions, ParserOptions, PrinterOptions, StyleSheet};
use lightningcss::targets::{Browsers, Targets};
use oxc_allocator::Allocator;
use oxc_codegen::{Codegen, CodegenOptions};
use oxc_minifier::{CompressOptions, MangleOptions, Minifier, MinifierOptions};
use oxc_parser::Parser;
use oxc_span::SourceType;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a body is, for minification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Html,
    Css,
    Js,
}

impl Kind {
    /// The kind of a lower-case media type, if it is one Meridian minifies.
    pub fn of_media_type(media: &str) -> Option<Kind> {
        match media {
            "text/html" => Some(Kind::Html),
            "text/css" => Some(Kind::Css),
            "text/javascript" | "application/javascript" | "application/x-javascript" => {
                Some(Kind::Js)
            }
            _ => None,
        }
    }
}

/// Why a body was left as the origin sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// Not UTF-8: every minifier here works on text.
    NotText,
    /// The minifier could not parse it (or panicked).
    Failed,
    /// Minified, it would not be smaller.
    NotSmaller,
}

/// `body` minified, or why it is left as it is.
pub fn minify(kind: Kind, body: &[u8]) -> Result<Vec<u8>, Skipped> {
    // One of them (minify-html's CSS path) even panics on invalid UTF-8: nothing else
    // reaches them.
    let text = std::str::from_utf8(body).map_err(|_| Skipped::NotText)?;
    let out = catch_unwind(AssertUnwindSafe(|| match kind {
        Kind::Html => Some(html(text)),
        Kind::Css => css(text),
        Kind::Js => js(text),
    }))
    .ok()
    .flatten()
    .ok_or(Skipped::Failed)?;
    if out.len() < body.len() {
        Ok(out)
    } else {
        Err(Skipped::NotSmaller)
    }
}

fn html(text: &str) -> Vec<u8> {
    let mut cfg = minify_html::Cfg::new();
    // minify-html prints inline CSS for the newest browsers only (media query ranges that
    // Safari < 16.4 ignores), with no way to give it targets: inline CSS is left alone.
    cfg.minify_css = false;
    cfg.minify_js = true;
    // Conditional comments are markup to old browsers: keep comments where they appear.
    cfg.keep_comments = text.contains("<!--[if");
    cfg.keep_ssi_comments = true;
    // Template syntax some origins leave for the client ({{ }}, {% %}) stays untouched.
    cfg.preserve_brace_template_syntax = true;
    minify_html::minify(text.as_bytes(), &cfg)
}

/// The oldest browsers whose CSS must keep working: lightningcss rewrites syntax only into
/// forms they all understand (without targets it prints the newest syntax, such as media
/// query ranges, which older Safari ignores).
fn css_targets() -> Targets {
    let v = |major: u32| Some(major << 16);
    Targets::from(Browsers {
        android: v(80),
        chrome: v(80),
        edge: v(80),
        firefox: v(78),
        ie: None,
        ios_saf: v(13),
        opera: v(67),
        safari: v(13),
        samsung: v(12),
    })
}

fn css(text: &str) -> Option<Vec<u8>> {
    let mut sheet = StyleSheet::parse(text, ParserOptions::default()).ok()?;
    sheet
        .minify(MinifyOptions {
            targets: css_targets(),
            ..MinifyOptions::default()
        })
        .ok()?;
    let printed = sheet
        .to_css(PrinterOptions {
            minify: true,
            targets: css_targets(),
            ..PrinterOptions::default()
        })
        .ok()?;
    Some(printed.code.into_bytes())
}

fn js(text: &str) -> Option<Vec<u8>> {
    let allocator = Allocator::default();
    // A classic script: a file served as JavaScript may not be a module, and parsing it as
    // one would reject `with` and octal literals and change `this` at top level.
    let parsed = Parser::new(&allocator, text, SourceType::cjs()).parse();
    if !parsed.errors.is_empty() || parsed.panicked {
        return None;
    }
    let mut program = parsed.program;
    let minified = Minifier::new(MinifierOptions {
        // Top-level names are visible to other scripts of the page: only locals are renamed.
        mangle: Some(MangleOptions::default()),
        compress: Some(CompressOptions::safest()),
    })
    .minify(&allocator, &mut program);
    let code = Codegen::new()
        .with_options(CodegenOptions {
            minify: true,
            ..CodegenOptions::default()
        })
        // The renamed locals live here: without them the code prints with its long names.
        .with_scoping(minified.scoping)
        .build(&program)
        .code;
    Some(code.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = include_str!("../../benches/minify/corpus/catalogue.html");
    const JQUERY: &str = include_str!("../../benches/minify/corpus/jquery-3.7.1.js");
    const BOOTSTRAP: &str = include_str!("../../benches/minify/corpus/bootstrap-5.3.3.css");

    fn parses_as_script(code: &str) -> bool {
        let allocator = Allocator::default();
        let r = Parser::new(&allocator, code, SourceType::cjs()).parse();
        r.errors.is_empty() && !r.panicked
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn html_shrinks_and_keeps_what_carries_meaning() {
        let out = text(minify(Kind::Html, PAGE.as_bytes()).unwrap());
        assert!(
            out.len() * 100 < PAGE.len() * 85,
            "{} -> {}",
            PAGE.len(),
            out.len()
        );
        // Whitespace inside <pre> and <textarea> is content.
        let pre = PAGE
            .split("<pre class=\"code\">")
            .nth(1)
            .unwrap()
            .split("</pre>")
            .next()
            .unwrap();
        assert!(out.contains(pre), "pre block changed");
        assert!(
            out.contains("  Keep   this\n    spacing  "),
            "textarea changed"
        );
        // A conditional comment is markup to old browsers.
        assert!(
            out.contains("<!--[if lt IE 9]>"),
            "conditional comment dropped"
        );
        // The inline script is still a script defining the same handler.
        let script = out
            .split("<script>")
            .nth(1)
            .unwrap()
            .split("</script>")
            .next()
            .unwrap();
        assert!(parses_as_script(script), "{script}");
        assert!(
            script.contains("function addToCart("),
            "the global handler keeps its name"
        );
        assert!(
            out.contains("addToCart(1000,"),
            "inline handlers still call it"
        );
        // Inline CSS is kept as written (see `html`), trimmed.
        assert!(out.contains(".card .price { font-weight: bold; color: #aa3300; }"));
        // Text is whitespace-collapsed, not removed.
        assert!(out.contains("Every piece is made to order. Prices include VAT."));
    }

    #[test]
    fn css_shrinks_and_still_parses() {
        let out = text(minify(Kind::Css, BOOTSTRAP.as_bytes()).unwrap());
        // Bootstrap's own minified build is 83 % of the source; prefixes for the targets
        // cost a little of that.
        assert!(
            out.len() * 100 < BOOTSTRAP.len() * 90,
            "{} -> {}",
            BOOTSTRAP.len(),
            out.len()
        );
        assert!(StyleSheet::parse(&out, ParserOptions::default()).is_ok());
        for selector in [".btn-primary", ".container", "@media (min-width:576px)"] {
            assert!(out.contains(selector), "{selector}");
        }
    }

    #[test]
    fn js_shrinks_keeps_top_level_names_and_still_parses() {
        let out = text(minify(Kind::Js, JQUERY.as_bytes()).unwrap());
        assert!(
            out.len() * 2 < JQUERY.len(),
            "{} -> {}",
            JQUERY.len(),
            out.len()
        );
        assert!(parses_as_script(&out));
        assert!(out.contains("jQuery"), "the global it exports");
        // Semantics a careless minifier breaks: ASI before a parenthesis, regex literals.
        let tricky = "var a = 1\nvar b = a\n(function(){ return 2 })\nvar re = /ab+c/g; var s = 'x' + re.source; \
                      function unused(){ return 42 } globalThis.r = [a, s, unused()];\n";
        let out = text(minify(Kind::Js, tricky.as_bytes()).unwrap());
        assert!(parses_as_script(&out), "{out}");
        assert!(out.contains("/ab+c/g"), "{out}");
        assert!(
            out.contains("a(function"),
            "no semicolon appeared where the source had none: {out}"
        );
    }

    #[test]
    fn what_cannot_be_minified_is_reported_not_mangled() {
        assert_eq!(
            minify(Kind::Css, &[0xff, 0xfe, b'a']),
            Err(Skipped::NotText)
        );
        assert_eq!(minify(Kind::Js, b"function (( {"), Err(Skipped::Failed));
        assert_eq!(minify(Kind::Css, b"a{b:c}"), Err(Skipped::NotSmaller));
        // Invalid UTF-8 inside <style> would panic minify-html; it never gets that far.
        let mut html = b"<html><style>a { color: red }".to_vec();
        html.extend_from_slice(&[0xc3, 0x28]);
        html.extend_from_slice(b"</style></html>");
        assert_eq!(minify(Kind::Html, &html), Err(Skipped::NotText));
        assert_eq!(Kind::of_media_type("text/html"), Some(Kind::Html));
        assert_eq!(Kind::of_media_type("application/json"), None);
    }
}
