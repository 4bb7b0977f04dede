//! Configuration errors: each names the file, the line and column, the key path and the reason.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The text of a configuration file, kept so byte offsets can become line:column.
#[derive(Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Source {
            path: path.into(),
            text: text.into(),
        }
    }

    /// 1-based line and column of a byte offset; columns count characters, not bytes.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        (line, col)
    }

    /// Builds an error at `span` (a byte range into the file).
    pub fn error(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        reason: impl Into<String>,
    ) -> ConfigError {
        let (line, col) = self.line_col(span.start);
        ConfigError {
            file: self.path.clone(),
            line,
            col,
            key: key.into(),
            reason: reason.into(),
            hint: None,
        }
    }
}

/// One thing wrong with a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the error is in.
    pub file: PathBuf,
    /// 1-based line of the offending value (0 when the file could not be read).
    pub line: usize,
    /// 1-based column of the offending value.
    pub col: usize,
    /// Dotted key path, e.g. `sites[2].routes[0].path`.
    pub key: String,
    /// What is wrong, naming the value.
    pub reason: String,
    /// How to fix it, when we know.
    pub hint: Option<String>,
}

impl ConfigError {
    /// Adds a suggested fix, shown after the reason.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// An error about the file as a whole (it cannot be read).
    pub fn whole_file(path: &Path, reason: impl Into<String>) -> Self {
        ConfigError {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
            key: String::new(),
            reason: reason.into(),
            hint: None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.reason)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Every error found in one configuration file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_and_in_characters() {
        let src = Source::new("x.toml", "a = 1\nbé = \"z\"\n");
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(6), (2, 1));
        // "bé = " is 6 bytes but 5 characters: the quote is column 6.
        assert_eq!(src.line_col(12), (2, 6));
    }

    #[test]
    fn display_names_file_position_key_reason_and_hint() {
        let src = Source::new("conf/m.toml", "\n\n  ttl = \"10x\"");
        let e = src
            .error(10..15, "sites[2].cache.ttl", "\"10x\" is not a duration")
            .hint("write e.g. \"90s\" or \"5m\"");
        assert_eq!(
            e.to_string(),
            "conf/m.toml:3:9: sites[2].cache.ttl: \"10x\" is not a duration; write e.g. \"90s\" or \"5m\""
        );
    }
}
