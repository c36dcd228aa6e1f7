//! Matching a request path against the exact shapes of [`Route`].

use http::Method;

use super::{Route, Snowflake};

/// API prefixes accepted before a route. Other versions, and `/api/` without a version (which Discord
/// serves with an old default version), are not recognised: their answers may differ in shape, and
/// sharing entries with them could hand a v10 client a v6-shaped answer. Writes on those are recognised
/// apart ([`parse_other_api`]), for their effects only.
const PREFIXES: [&str; 2] = ["/api/v10/", "/api/v9/"];

/// The most segments any route has.
const MAX_SEGMENTS: usize = 6;

/// The API's root: writes under it change the same objects whatever the version.
const API: &str = "/api/";

/// The route of `method` and `path` (no query string), or `None`.
pub(super) fn parse(method: &Method, path: &str) -> Option<Route> {
    let rest = PREFIXES
        .iter()
        .find_map(|prefix| path.strip_prefix(prefix))
        .or_else(|| path.strip_prefix('/'))?;
    parse_rest(method, rest)
}

/// The route of `method` and `path` on unversioned `/api/` or on an API version other than the
/// [`PREFIXES`], or `None`.
pub(super) fn parse_other_api(method: &Method, path: &str) -> Option<Route> {
    let rest = path.strip_prefix(API)?;
    let rest = match rest.split_once('/') {
        Some((version, rest)) if is_version(version) => {
            if PREFIXES.iter().any(|prefix| path.starts_with(prefix)) {
                return None;
            }
            rest
        }
        _ => rest,
    };
    parse_rest(method, rest)
}

/// `v` and a version number, such as `v8`.
fn is_version(segment: &str) -> bool {
    segment
        .strip_prefix('v')
        .is_some_and(|number| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
}

/// The route of the path after its prefix.
fn parse_rest(method: &Method, rest: &str) -> Option<Route> {
    let mut segments = [""; MAX_SEGMENTS];
    let mut len = 0;
    for segment in rest.split('/') {
        *segments.get_mut(len)? = segment;
        len += 1;
    }
    match_segments(method, &segments[..len])
}

fn match_segments(method: &Method, segments: &[&str]) -> Option<Route> {
    let id = |segment: &str| snowflake(segment);
    let route = match *segments {
        ["users", "@me", "guilds"] => only(method, Method::GET, Route::CurrentUserGuilds)?,
        ["users", "@me", "guilds", guild] => only(
            method,
            Method::DELETE,
            Route::LeaveGuild { guild: id(guild)? },
        )?,
        ["guilds", guild, "channels"] => {
            let guild = id(guild)?;
            match *method {
                Method::GET => Route::GuildChannels { guild },
                Method::POST => Route::CreateGuildChannel { guild },
                Method::PATCH => Route::ModifyGuildChannelPositions { guild },
                _ => return None,
            }
        }
        ["guilds", guild, "roles"] => {
            let guild = id(guild)?;
            match *method {
                Method::GET => Route::GuildRoles { guild },
                Method::POST => Route::CreateGuildRole { guild },
                Method::PATCH => Route::ModifyGuildRolePositions { guild },
                _ => return None,
            }
        }
        ["guilds", guild, "roles", role] => {
            let (guild, role) = (id(guild)?, id(role)?);
            match *method {
                Method::PATCH => Route::ModifyGuildRole { guild, role },
                Method::DELETE => Route::DeleteGuildRole { guild, role },
                _ => return None,
            }
        }
        ["guilds", guild, "members", "@me"] => only(
            method,
            Method::PATCH,
            Route::ModifyCurrentMember { guild: id(guild)? },
        )?,
        ["guilds", guild, "members", user] => {
            let (guild, user) = (id(guild)?, id(user)?);
            match *method {
                Method::GET => Route::GuildMember { guild, user },
                Method::PATCH => Route::ModifyGuildMember { guild, user },
                Method::DELETE => Route::RemoveGuildMember { guild, user },
                _ => return None,
            }
        }
        ["guilds", guild, "members", user, "roles", role] => {
            let (guild, user, role) = (id(guild)?, id(user)?, id(role)?);
            match *method {
                Method::PUT => Route::AddGuildMemberRole { guild, user, role },
                Method::DELETE => Route::RemoveGuildMemberRole { guild, user, role },
                _ => return None,
            }
        }
        ["guilds", guild, "bans", user] => only(
            method,
            Method::PUT,
            Route::CreateGuildBan {
                guild: id(guild)?,
                user: id(user)?,
            },
        )?,
        ["channels", channel] => {
            let channel = id(channel)?;
            match *method {
                Method::PATCH => Route::ModifyChannel { channel },
                Method::DELETE => Route::DeleteChannel { channel },
                _ => return None,
            }
        }
        ["channels", channel, "permissions", overwrite] => {
            let (channel, overwrite) = (id(channel)?, id(overwrite)?);
            match *method {
                Method::PUT => Route::EditChannelPermissions { channel, overwrite },
                Method::DELETE => Route::DeleteChannelPermission { channel, overwrite },
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(route)
}

fn only(method: &Method, expected: Method, route: Route) -> Option<Route> {
    (*method == expected).then_some(route)
}

/// A snowflake in canonical form: 1 to 20 ASCII digits, no leading zero, within `u64`.
///
/// Anything else (`@me`, a leading zero, a sign, spaces, percent-encoding) is not an id, so a request
/// naming one object in two spellings never gets two cache entries, and a look-alike never matches.
pub(crate) fn snowflake(segment: &str) -> Option<Snowflake> {
    let bytes = segment.as_bytes();
    let canonical = !bytes.is_empty()
        && bytes.len() <= 20
        && bytes[0] != b'0'
        && bytes.iter().all(u8::is_ascii_digit);
    if canonical {
        segment.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflakes_are_canonical_decimal() {
        assert_eq!(snowflake("81384788765712384"), Some(81384788765712384));
        assert_eq!(snowflake("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "0",
            "01",
            "+1",
            "-1",
            " 1",
            "1 ",
            "18446744073709551616",
            "@me",
            "1e3",
            "%31",
        ] {
            assert_eq!(snowflake(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn writes_on_other_api_versions_are_recognised_apart() {
        let role = Some(Route::CreateGuildRole {
            guild: 81384788765712384,
        });
        for path in [
            "/api/guilds/81384788765712384/roles",
            "/api/v8/guilds/81384788765712384/roles",
            "/api/v6/guilds/81384788765712384/roles",
            "/api/v11/guilds/81384788765712384/roles",
        ] {
            assert_eq!(parse_other_api(&Method::POST, path), role, "{path}");
            assert_eq!(parse(&Method::POST, path), None, "{path}");
        }
        for path in [
            "/api/v10/guilds/81384788765712384/roles",
            "/api/v9/guilds/81384788765712384/roles",
            "/guilds/81384788765712384/roles",
            "/api/vx/guilds/81384788765712384/roles",
            "/api/v/guilds/81384788765712384/roles",
        ] {
            assert_eq!(parse_other_api(&Method::POST, path), None, "{path}");
        }
    }

    #[test]
    fn prefixes_and_bare_paths() {
        for path in [
            "/users/@me/guilds",
            "/api/v9/users/@me/guilds",
            "/api/v10/users/@me/guilds",
        ] {
            assert_eq!(
                parse(&Method::GET, path),
                Some(Route::CurrentUserGuilds),
                "{path}"
            );
        }
        for path in [
            "/api/users/@me/guilds",
            "/api/v8/users/@me/guilds",
            "/api/v11/users/@me/guilds",
            "/v10/users/@me/guilds",
            "users/@me/guilds",
            "/api/v10//users/@me/guilds",
            "/api/v10/users/@me/guilds/",
        ] {
            assert_eq!(parse(&Method::GET, path), None, "{path}");
        }
    }
}
