//! Property tests of the route parser: arbitrary paths never panic and never land in a wrong family.

use cache_discord::{Route, RouteQuery};
use http::{Method, Uri};
use proptest::prelude::*;

const PREFIXES: [&str; 3] = ["", "/api/v9", "/api/v10"];

fn methods() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::PATCH),
        Just(Method::DELETE),
        Just(Method::HEAD),
    ]
}

fn snowflake() -> impl Strategy<Value = u64> {
    prop_oneof![
        1u64..1000,
        10_000_000_000_000_000u64..u64::MAX,
        Just(u64::MAX)
    ]
}

/// Every route, from arbitrary ids.
fn routes() -> impl Strategy<Value = Route> {
    (snowflake(), snowflake(), snowflake(), 0..21u8).prop_map(|(a, b, c, which)| match which {
        0 => Route::CurrentUserGuilds,
        1 => Route::GuildChannels { guild: a },
        2 => Route::GuildRoles { guild: a },
        3 => Route::GuildMember { guild: a, user: b },
        4 => Route::ModifyGuildMember { guild: a, user: b },
        5 => Route::ModifyCurrentMember { guild: a },
        6 => Route::AddGuildMemberRole {
            guild: a,
            user: b,
            role: c,
        },
        7 => Route::RemoveGuildMemberRole {
            guild: a,
            user: b,
            role: c,
        },
        8 => Route::RemoveGuildMember { guild: a, user: b },
        9 => Route::CreateGuildBan { guild: a, user: b },
        10 => Route::CreateGuildRole { guild: a },
        11 => Route::ModifyGuildRolePositions { guild: a },
        12 => Route::ModifyGuildRole { guild: a, role: b },
        13 => Route::DeleteGuildRole { guild: a, role: b },
        14 => Route::CreateGuildChannel { guild: a },
        15 => Route::ModifyGuildChannelPositions { guild: a },
        16 => Route::ModifyChannel { channel: a },
        17 => Route::DeleteChannel { channel: a },
        18 => Route::EditChannelPermissions {
            channel: a,
            overwrite: b,
        },
        19 => Route::DeleteChannelPermission {
            channel: a,
            overwrite: b,
        },
        _ => Route::LeaveGuild { guild: a },
    })
}

/// Path-ish strings: segments from route words, ids, and junk.
fn path_like() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("users".to_owned()),
        Just("@me".to_owned()),
        Just("guilds".to_owned()),
        Just("channels".to_owned()),
        Just("roles".to_owned()),
        Just("members".to_owned()),
        Just("bans".to_owned()),
        Just("permissions".to_owned()),
        Just("member-counts".to_owned()),
        Just("search".to_owned()),
        Just("api".to_owned()),
        Just("v10".to_owned()),
        Just("v9".to_owned()),
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("".to_owned()),
        snowflake().prop_map(|id| id.to_string()),
        "[0-9]{1,22}",
        "[a-zA-Z0-9%@._~-]{1,8}",
        any::<String>().prop_map(|s| s.chars().filter(|c| *c != '/').take(6).collect()),
    ];
    proptest::collection::vec(segment, 0..8).prop_map(|segments| format!("/{}", segments.join("/")))
}

/// If `path` parsed as `route`, the path without its prefix is exactly the route's canonical path.
fn assert_exact(path: &str, route: Route) {
    let canonical = route.path();
    let matched = PREFIXES
        .iter()
        .any(|prefix| path == format!("{prefix}{canonical}"));
    assert!(matched, "{path:?} parsed as {route:?} ({canonical})");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn arbitrary_paths_never_panic_nor_land_in_a_wrong_family(
        method in methods(),
        path in path_like(),
        query in proptest::option::of("[a-z_=&0-9%]{0,24}"),
    ) {
        let full = match &query {
            Some(query) => format!("{path}?{query}"),
            None => path.clone(),
        };
        if let Ok(uri) = full.parse::<Uri>() {
            if let Some((route, _)) = Route::parse(&method, &uri) {
                assert_exact(uri.path(), route);
                prop_assert_eq!(route.method(), method);
            }
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(method in methods(), text in any::<String>()) {
        if let Ok(uri) = text.parse::<Uri>() {
            if let Some((route, _)) = Route::parse(&method, &uri) {
                assert_exact(uri.path(), route);
            }
        }
    }

    #[test]
    fn every_route_parses_back_from_every_prefix(route in routes(), prefix in 0..PREFIXES.len()) {
        let uri: Uri = format!("https://discord.com{}{}", PREFIXES[prefix], route.path()).parse().unwrap();
        prop_assert_eq!(Route::parse(&route.method(), &uri), Some((route, RouteQuery::default())));
    }

    #[test]
    fn junk_around_a_route_never_parses_as_another_route(
        route in routes(),
        junk in "[a-z0-9%._@-]{1,4}",
        at in 0..3u8,
    ) {
        let path = route.path();
        let mangled = match at {
            0 => format!("{path}/{junk}"),
            1 => format!("{path}{junk}"),
            _ => format!("/{junk}{path}"),
        };
        if let Ok(uri) = mangled.parse::<Uri>() {
            if let Some((parsed, _)) = Route::parse(&route.method(), &uri) {
                // Only possible when the junk happens to form another exact route: then it is exact.
                assert_exact(uri.path(), parsed);
                prop_assert_ne!(parsed, route);
            }
        }
    }
}
