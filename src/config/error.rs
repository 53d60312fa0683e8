//! The one error type of the config subsystem.
//!
//! Every message starts with where to look: the file, then (for a bad value)
//! the dotted field path as written in TOML, e.g.
//! `/etc/tandem.toml:mysql.users[1].password_hash: expected "*" followed by 40 hex digits`.
//!
//! The Display is the whole story on one line (what `check-config` prints), so
//! no variant also exposes its cause through `source()`: a printer walking the
//! chain would repeat it.

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all (missing, permissions, not UTF-8).
    #[error("{file}: cannot read: {error}")]
    Read { file: String, error: std::io::Error },
    /// The file is not valid TOML; `reason` carries the line and column.
    #[error("{file}: {reason}")]
    Syntax { file: String, reason: String },
    /// A field has a wrong type or value, is missing, or is not known.
    #[error("{file}:{field}: {reason}")]
    Field {
        file: String,
        field: String,
        reason: String,
    },
}

// === impl ConfigError ===

impl ConfigError {
    /// The dotted path of the offending field, when the error is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Field { field, .. } => Some(field),
            _ => None,
        }
    }
}
