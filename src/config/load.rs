//! Reading and merging: file text + `TANDEM__*` environment -> raw structs,
//! with every error turned into a [`ConfigError`] that names file and field.
//!
//! The `config` crate merges the sources; its value tree then goes through a
//! `serde_json::Value` so that `serde_path_to_error` can name the field of a
//! type error and serde's messages stay plain (the `config` crate's own
//! deserializer would also round floats into integers and turn `yes` into 1).

use std::path::Path;

use config::{Environment, File, FileFormat, Map, Source};

use super::raw::RawConfig;
use super::validate::{self, Invalid};
use super::{Config, ConfigError};

/// `TANDEM__MYSQL__LISTEN` overrides `[mysql] listen`.
const ENV_PREFIX: &str = "TANDEM";
/// Between the prefix and the first key and between levels. Double, so that
/// single underscores stay inside key names (`MAX_CLIENT_CONNECTIONS`).
const ENV_SEPARATOR: &str = "__";

/// Which fields the environment set, to say so in an error about them.
#[derive(Debug, Default)]
struct EnvOverrides {
    /// (dotted lowercase key as the `config` crate sees it, variable name)
    keys: Vec<(String, String)>,
}

/// Loads `path` and applies the environment. `env` replaces the process
/// environment when given (tests); `None` reads the real one.
pub(super) fn from_file(
    path: &Path,
    env: Option<Map<String, String>>,
) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        file: file.clone(),
        error,
    })?;
    let environment = Environment::with_prefix(ENV_PREFIX)
        .prefix_separator(ENV_SEPARATOR)
        .separator(ENV_SEPARATOR)
        .source(env);
    from_text(&text, &file, Some(environment), path.parent())
}

/// Parses, merges, deserializes and validates. `file` labels errors and
/// becomes `Config::origin`.
pub(super) fn from_text(
    text: &str,
    file: &str,
    env: Option<Environment>,
    base_dir: Option<&Path>,
) -> Result<Config, ConfigError> {
    check_syntax(text, file)?;
    let mut builder = config::Config::builder().add_source(File::from_str(text, FileFormat::Toml));
    let mut overrides = EnvOverrides::default();
    if let Some(env) = env {
        overrides = EnvOverrides::collect(&env).map_err(|e| ConfigError::Syntax {
            file: file.to_owned(),
            reason: format!("environment: {e}"),
        })?;
        builder = builder.add_source(env);
    }
    let merged: serde_json::Value =
        builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError::Syntax {
                file: file.to_owned(),
                reason: e.to_string(),
            })?;
    let field_error = |bad: Invalid| {
        let reason = match overrides.variable_for(&bad.field) {
            Some(var) => format!("{} (set by environment variable {var})", bad.reason),
            None => bad.reason,
        };
        ConfigError::Field {
            file: file.to_owned(),
            field: bad.field,
            reason,
        }
    };
    let raw: RawConfig =
        serde_path_to_error::deserialize(merged).map_err(|e| field_error(from_serde(e)))?;
    validate::config(raw, file, base_dir).map_err(field_error)
}

/// TOML syntax errors, reported with line and column. Parsed here rather
/// than left to the `config` crate, whose error does not carry the position.
fn check_syntax(text: &str, file: &str) -> Result<(), ConfigError> {
    let Err(e) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    // toml puts "expected ..." on a second line; an error is one line here.
    let message = e.message().trim_end().replace('\n', ", ");
    let reason = match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    };
    Err(ConfigError::Syntax {
        file: file.to_owned(),
        reason,
    })
}

/// Turns serde's wording into `field: reason` with the field always the one
/// at fault: serde puts a missing field's name in the message, not the path.
fn from_serde(e: serde_path_to_error::Error<serde_json::Error>) -> Invalid {
    let path = e.path().to_string();
    let message = e.into_inner().to_string();
    let join = |key: &str| {
        if path == "." {
            key.to_owned()
        } else if path.ends_with(&format!(".{key}")) || path == key {
            path.clone()
        } else {
            format!("{path}.{key}")
        }
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let reason = match closest(key, expected) {
            Some(near) => format!("unknown field, did you mean `{near}`?"),
            None => "unknown field".to_owned(),
        };
        return Invalid {
            field: join(key),
            reason,
        };
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let key = rest.split('`').next().unwrap_or(rest);
        return Invalid {
            field: join(key),
            reason: "missing required field".to_owned(),
        };
    }
    Invalid {
        field: path,
        reason: message,
    }
}

/// The known field nearest to a misspelt one, if near enough to be a typo.
/// `expected` is the tail of serde's message: "expected one of `a`, `b`".
fn closest<'a>(key: &str, expected: &'a str) -> Option<&'a str> {
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|name| (edit_distance(key, name), name))
        .filter(|&(d, name)| d <= 2.max(name.len() / 4))
        .min()
        .map(|(_, name)| name)
}

/// Levenshtein distance; the strings are field names, so O(n·m) is nothing.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

// === impl EnvOverrides ===

impl EnvOverrides {
    /// Asks the same `Environment` source the merge uses, so the keys match
    /// exactly what was applied.
    fn collect(env: &Environment) -> Result<Self, config::ConfigError> {
        let keys = env
            .collect()?
            .into_keys()
            .map(|key| {
                let var = format!(
                    "{ENV_PREFIX}{ENV_SEPARATOR}{}",
                    key.to_uppercase().replace('.', ENV_SEPARATOR)
                );
                (key, var)
            })
            .collect();
        Ok(EnvOverrides { keys })
    }

    /// The variable that set `field` or one of its parents.
    fn variable_for(&self, field: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|(key, _)| {
                field
                    .strip_prefix(key.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
            })
            .map(|(_, var)| var.as_str())
    }
}
