//! The query parameters that change a read's answer, in canonical order.

use std::fmt::{self, Write as _};

use super::path::snowflake;
use super::{Route, Snowflake};

/// The query parameters of a read that change its answer. Only `GET /users/@me/guilds` takes any:
/// `before`, `after`, `limit` (1 to 200) and `with_counts` (`true`/`false`).
///
/// [`Display`](fmt::Display) renders them in one canonical order (`after`, `before`, `limit`,
/// `with_counts`), so `?limit=10&after=1` and `?after=1&limit=10` share one cache entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RouteQuery {
    /// Guilds after this id.
    pub after: Option<Snowflake>,
    /// Guilds before this id.
    pub before: Option<Snowflake>,
    /// At most this many guilds.
    pub limit: Option<u16>,
    /// Whether approximate member and presence counts are included.
    pub with_counts: Option<bool>,
}

impl RouteQuery {
    /// Parses the query string of a read of `route`. `None` when a parameter is unknown for the
    /// route, repeated, empty or malformed: such a read is not cached.
    pub(super) fn parse(route: Route, query: Option<&str>) -> Option<Self> {
        let mut parsed = Self::default();
        let Some(query) = query.filter(|query| !query.is_empty()) else {
            return Some(parsed);
        };
        if route != Route::CurrentUserGuilds {
            return None;
        }
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=')?;
            match name {
                "after" if parsed.after.is_none() => parsed.after = Some(snowflake(value)?),
                "before" if parsed.before.is_none() => parsed.before = Some(snowflake(value)?),
                "limit" if parsed.limit.is_none() => parsed.limit = Some(limit(value)?),
                "with_counts" if parsed.with_counts.is_none() => {
                    parsed.with_counts = Some(match value {
                        "true" => true,
                        "false" => false,
                        _ => return None,
                    });
                }
                _ => return None,
            }
        }
        Some(parsed)
    }

    /// True when no parameter is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

fn limit(value: &str) -> Option<u16> {
    let canonical = (1..=3).contains(&value.len())
        && !value.starts_with('0')
        && value.bytes().all(|b| b.is_ascii_digit());
    let limit: u16 = value.parse().ok().filter(|_| canonical)?;
    (1..=200).contains(&limit).then_some(limit)
}

impl fmt::Display for RouteQuery {
    /// `""` when empty, else `?name=value&...` in canonical order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut separator = '?';
        let mut param = |f: &mut fmt::Formatter<'_>, name: &str, value: &dyn fmt::Display| {
            f.write_char(separator)?;
            separator = '&';
            write!(f, "{name}={value}")
        };
        if let Some(after) = self.after {
            param(f, "after", &after)?;
        }
        if let Some(before) = self.before {
            param(f, "before", &before)?;
        }
        if let Some(limit) = self.limit {
            param(f, "limit", &limit)?;
        }
        if let Some(with_counts) = self.with_counts {
            param(f, "with_counts", &with_counts)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guilds(query: &str) -> Option<String> {
        RouteQuery::parse(Route::CurrentUserGuilds, Some(query)).map(|q| q.to_string())
    }

    #[test]
    fn canonical_order_whatever_the_request_order() {
        assert_eq!(
            guilds("with_counts=true&limit=10&before=9&after=8").as_deref(),
            Some("?after=8&before=9&limit=10&with_counts=true")
        );
        assert_eq!(guilds("").as_deref(), Some(""));
    }

    #[test]
    fn unknown_repeated_or_malformed_parameters_are_not_cached() {
        for query in [
            "foo=1",
            "limit=10&limit=20",
            "limit=0",
            "limit=201",
            "limit=010",
            "limit=",
            "with_counts=1",
            "with_counts=TRUE",
            "after=abc",
            "after",
            "limit=10&",
            "&limit=10",
            "limit=%31",
        ] {
            assert_eq!(guilds(query), None, "{query}");
        }
        let roles = Route::GuildRoles { guild: 1 };
        assert_eq!(RouteQuery::parse(roles, Some("limit=10")), None);
        assert_eq!(
            RouteQuery::parse(roles, Some("")),
            Some(RouteQuery::default())
        );
    }
}
