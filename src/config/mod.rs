//! Configuration: reads a TOML file into the validated runtime model.
//!
//! Three layers, as river has: `file` mirrors the TOML, `validate` checks it and builds
//! `runtime`, the only form the rest of the node sees.

pub mod dns;
pub mod error;
pub mod file;
pub mod ids;
pub mod live;
pub mod reload;
pub mod runtime;
pub mod shared;
pub mod validate;

pub use error::{ConfigError, ConfigErrors, Source};
pub use runtime::Runtime;

use std::path::Path;

/// The config `meridian serve` and `check` read when no `--config` is given.
pub const DEFAULT_PATH: &str = "conf/meridian.toml";

/// Reads, parses and validates the configuration at `path`.
pub fn load(path: &Path) -> Result<Runtime, ConfigErrors> {
    parse(&Source::new(path, read(path)?))
}

/// The text of the configuration file at `path`, or the error naming it.
pub(crate) fn read(path: &Path) -> Result<String, ConfigErrors> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError::whole_file(
            path,
            format!("cannot read the configuration: {e}"),
        )])
    })
}

/// Parses and validates configuration text; `src.path` is only used in messages.
pub fn parse(src: &Source) -> Result<Runtime, ConfigErrors> {
    let de = toml::Deserializer::new(&src.text);
    let file: file::FileConfig = serde_path_to_error::deserialize(de)
        .map_err(|e| ConfigErrors(vec![structural_error(src, &e)]))?;
    validate::build(&file, src)
}

/// Turns a TOML syntax or shape error into one that names the key path and suggests a fix.
fn structural_error(src: &Source, e: &serde_path_to_error::Error<toml::de::Error>) -> ConfigError {
    let inner = e.inner();
    let span = inner.span().unwrap_or(0..0);
    let key = clean_path(&e.path().to_string());
    let message = inner.message().trim().to_owned();
    let mut err = src.error(span, key, message.clone());
    if let Some((unknown, expected)) = parse_unknown_field(&message) {
        err.reason = format!("unknown key {unknown:?}");
        err = match closest(unknown, &expected) {
            Some(c) => err.hint(format!("did you mean {c:?}?")),
            None => err.hint(format!("valid keys here: {}", expected.join(", "))),
        };
    }
    err
}

/// Removes serde's private `Spanned` plumbing and the root marker from a path.
fn clean_path(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('.')
        .filter(|p| !p.starts_with("$__serde_spanned") && *p != "?")
        .collect();
    parts.join(".")
}

/// Splits serde's "unknown field `x`, expected one of `a`, `b`" into `x` and `[a, b]`.
fn parse_unknown_field(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).collect();
    Some((unknown, expected))
}

/// The candidate nearest to `word` by edit distance, if it is near enough to be a typo.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A runtime for unit tests: one node, one region on loopback, and the `[[sites]]` given.
#[cfg(test)]
pub(crate) fn runtime_for_tests(sites: &str) -> Runtime {
    let text = format!(
        "[node]\nname = \"n\"\nlocation = {{ lat = 0.0, lon = 0.0 }}\n\
         [listen]\nhttp = [\"127.0.0.1:1\"]\nadmin = \"127.0.0.1:2\"\n\
         [[regions]]\nname = \"r\"\nlocation = {{ lat = 0.0, lon = 0.0 }}\n\
         origins = [\"127.0.0.1:3\"]\n{sites}"
    );
    match parse(&Source::new("t.toml", text)) {
        Ok(rt) => rt,
        Err(e) => panic!("test configuration: {e}"),
    }
}

#[cfg(test)]
mod tests;
