//! Reading settings from the environment, with errors that name the variable.
//!
//! Every crate of the workspace reads its settings through these functions, so a bad value always fails
//! the same way: at startup, naming the variable and saying what a good value looks like. An empty value
//! counts as unset, so `VAR=` in a compose file means "the default".

use std::collections::HashMap;
use std::time::Duration;

use crate::Error;

/// A source of settings: the process environment, or a map in tests and embedded configs.
pub trait Environment {
    /// The value of `name`, `None` when unset or empty.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the value is not valid unicode.
    fn var(&self, name: &str) -> Result<Option<String>, Error>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Result<Option<String>, Error> {
        match std::env::var(name) {
            Ok(value) if value.is_empty() => Ok(None),
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(invalid(name, "", "the value is not valid unicode"))
            }
        }
    }
}

impl<S: std::hash::BuildHasher> Environment for HashMap<String, String, S> {
    fn var(&self, name: &str) -> Result<Option<String>, Error> {
        Ok(self.get(name).filter(|value| !value.is_empty()).cloned())
    }
}

impl<const N: usize> Environment for [(&str, &str); N] {
    fn var(&self, name: &str) -> Result<Option<String>, Error> {
        Ok(self
            .iter()
            .find(|(key, value)| *key == name && !value.is_empty())
            .map(|(_, value)| (*value).to_owned()))
    }
}

/// The first source, then the second for what the first leaves unset: an application's own defaults
/// under the process environment.
///
/// ```
/// use cache_core::config::env::{Environment, ProcessEnv};
///
/// let env = (ProcessEnv, [("CACHE_NEAR_SIZE", "10000")]);
/// # std::env::remove_var("CACHE_NEAR_SIZE");
/// assert_eq!(env.var("CACHE_NEAR_SIZE")?.as_deref(), Some("10000"));
/// # Ok::<(), cache_core::Error>(())
/// ```
impl<A: Environment, B: Environment> Environment for (A, B) {
    fn var(&self, name: &str) -> Result<Option<String>, Error> {
        match self.0.var(name)? {
            Some(value) => Ok(Some(value)),
            None => self.1.var(name),
        }
    }
}

/// Builds the error for a bad value of `variable`.
pub fn invalid(variable: &str, value: &str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        variable: variable.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Reads a boolean: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, in any case.
///
/// # Errors
/// [`Error::InvalidConfig`] naming `name` for any other value.
pub fn read_bool(env: &impl Environment, name: &str, default: bool) -> Result<bool, Error> {
    let Some(value) = env.var(name)? else {
        return Ok(default);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(
            name,
            &value,
            "expected true or false (also 1/0, yes/no, on/off)",
        )),
    }
}

/// Reads a whole number of at least `min`.
///
/// # Errors
/// [`Error::InvalidConfig`] naming `name` when the value is not a whole number or is below `min`.
pub fn read_u64(env: &impl Environment, name: &str, default: u64, min: u64) -> Result<u64, Error> {
    let Some(value) = env.var(name)? else {
        return Ok(default);
    };
    let parsed: u64 = value.trim().parse().map_err(|_| {
        invalid(
            name,
            &value,
            format!("expected a whole number of at least {min}"),
        )
    })?;
    if parsed < min {
        return Err(invalid(
            name,
            &value,
            format!("expected a whole number of at least {min}"),
        ));
    }
    Ok(parsed)
}

/// Reads a duration given in whole seconds (`0` allowed: for TTLs it means "dedupe only, never stored").
///
/// # Errors
/// [`Error::InvalidConfig`] naming `name` when the value is not a whole number of seconds.
pub fn read_secs(env: &impl Environment, name: &str, default: Duration) -> Result<Duration, Error> {
    read_duration(
        env,
        name,
        default,
        Duration::from_secs,
        "seconds, such as 60",
    )
}

/// Reads a duration given in whole milliseconds.
///
/// # Errors
/// [`Error::InvalidConfig`] naming `name` when the value is not a whole number of milliseconds.
pub fn read_millis(
    env: &impl Environment,
    name: &str,
    default: Duration,
) -> Result<Duration, Error> {
    read_duration(
        env,
        name,
        default,
        Duration::from_millis,
        "milliseconds, such as 50",
    )
}

/// Reads a duration given in whole milliseconds, of at least 1: a timeout or a bound that zero would
/// turn into "never" or "always".
///
/// # Errors
/// [`Error::InvalidConfig`] naming `name` when the value is not a whole number of milliseconds or is 0.
pub fn read_positive_millis(
    env: &impl Environment,
    name: &str,
    default: Duration,
) -> Result<Duration, Error> {
    let duration = read_millis(env, name, default)?;
    if duration.is_zero() {
        return Err(invalid(
            name,
            "0",
            "expected a positive number of milliseconds",
        ));
    }
    Ok(duration)
}

/// A whole number of `unit`s (`unit` says which, with an example, for the error).
fn read_duration(
    env: &impl Environment,
    name: &str,
    default: Duration,
    from: fn(u64) -> Duration,
    unit: &str,
) -> Result<Duration, Error> {
    let Some(value) = env.var(name)? else {
        return Ok(default);
    };
    value
        .trim()
        .parse::<u64>()
        .map(from)
        .map_err(|_| invalid(name, &value, format!("expected a whole number of {unit}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_unset() {
        let env = [("CACHE_ENABLED", "")];
        assert!(read_bool(&env, "CACHE_ENABLED", true).unwrap());
    }

    #[test]
    fn numbers_below_the_minimum_name_the_variable() {
        let env = [("CACHE_MEMORY_SIZE", "0")];
        let err = read_u64(&env, "CACHE_MEMORY_SIZE", 10, 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CACHE_MEMORY_SIZE") && err.contains("\"0\""),
            "{err}"
        );
    }

    #[test]
    fn seconds_reject_units_and_fractions() {
        for bad in ["60s", "1.5", "-1", "a minute"] {
            let env = [("CACHE_DISCORD_ROLES_TTL", bad)];
            let err = read_secs(&env, "CACHE_DISCORD_ROLES_TTL", Duration::ZERO).unwrap_err();
            assert!(err.to_string().contains("CACHE_DISCORD_ROLES_TTL"), "{err}");
        }
        let env = [("CACHE_DISCORD_ROLES_TTL", " 90 ")];
        assert_eq!(
            read_secs(&env, "CACHE_DISCORD_ROLES_TTL", Duration::ZERO).unwrap(),
            Duration::from_secs(90)
        );
    }
}
