//! The REST endpoints: routing, authentication, rate limiting and the handlers.

use std::collections::HashMap;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

use super::ratelimit::{BucketHeaders, Verdict};
use super::world::{role_json, Guild, World};
use super::Shared;
use crate::Snowflake;

/// Every endpoint the server answers, with its ids.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    MyGuilds,
    LeaveGuild(Snowflake),
    Channels(Snowflake),
    CreateChannel(Snowflake),
    ChannelPositions(Snowflake),
    Roles(Snowflake),
    CreateRole(Snowflake),
    RolePositions(Snowflake),
    RoleMemberCounts(Snowflake),
    ModifyRole(Snowflake, Snowflake),
    DeleteRole(Snowflake, Snowflake),
    SearchMembers(Snowflake),
    CurrentMember(Snowflake),
    ModifyCurrentMember(Snowflake),
    Member(Snowflake, Snowflake),
    ModifyMember(Snowflake, Snowflake),
    Kick(Snowflake, Snowflake),
    AddMemberRole(Snowflake, Snowflake, Snowflake),
    RemoveMemberRole(Snowflake, Snowflake, Snowflake),
    Ban(Snowflake, Snowflake),
    ModifyChannel(Snowflake),
    DeleteChannel(Snowflake),
    EditPermissions(Snowflake, Snowflake),
    DeletePermission(Snowflake, Snowflake),
    CreateMessage(Snowflake),
    ChannelMessages(Snowflake),
    Gateway,
}

impl Endpoint {
    fn parse(method: &Method, path: &str) -> Option<Self> {
        let rest = ["/api/v10/", "/api/v9/", "/api/", "/"]
            .iter()
            .find_map(|prefix| path.strip_prefix(prefix))?;
        let segments: Vec<&str> = rest.split('/').collect();
        let id = |s: &str| s.parse::<Snowflake>().ok();
        use Endpoint as E;
        let m = method.as_str();
        Some(match (m, segments.as_slice()) {
            ("GET", ["users", "@me", "guilds"]) => E::MyGuilds,
            ("DELETE", ["users", "@me", "guilds", g]) => E::LeaveGuild(id(g)?),
            ("GET", ["guilds", g, "channels"]) => E::Channels(id(g)?),
            ("POST", ["guilds", g, "channels"]) => E::CreateChannel(id(g)?),
            ("PATCH", ["guilds", g, "channels"]) => E::ChannelPositions(id(g)?),
            ("GET", ["guilds", g, "roles"]) => E::Roles(id(g)?),
            ("POST", ["guilds", g, "roles"]) => E::CreateRole(id(g)?),
            ("PATCH", ["guilds", g, "roles"]) => E::RolePositions(id(g)?),
            ("GET", ["guilds", g, "roles", "member-counts"]) => E::RoleMemberCounts(id(g)?),
            ("PATCH", ["guilds", g, "roles", r]) => E::ModifyRole(id(g)?, id(r)?),
            ("DELETE", ["guilds", g, "roles", r]) => E::DeleteRole(id(g)?, id(r)?),
            ("GET", ["guilds", g, "members", "search"]) => E::SearchMembers(id(g)?),
            ("GET", ["guilds", g, "members", "@me"]) => E::CurrentMember(id(g)?),
            ("PATCH", ["guilds", g, "members", "@me"]) => E::ModifyCurrentMember(id(g)?),
            ("GET", ["guilds", g, "members", u]) => E::Member(id(g)?, id(u)?),
            ("PATCH", ["guilds", g, "members", u]) => E::ModifyMember(id(g)?, id(u)?),
            ("DELETE", ["guilds", g, "members", u]) => E::Kick(id(g)?, id(u)?),
            ("PUT", ["guilds", g, "members", u, "roles", r]) => {
                E::AddMemberRole(id(g)?, id(u)?, id(r)?)
            }
            ("DELETE", ["guilds", g, "members", u, "roles", r]) => {
                E::RemoveMemberRole(id(g)?, id(u)?, id(r)?)
            }
            ("PUT", ["guilds", g, "bans", u]) => E::Ban(id(g)?, id(u)?),
            ("PATCH", ["channels", c]) => E::ModifyChannel(id(c)?),
            ("DELETE", ["channels", c]) => E::DeleteChannel(id(c)?),
            ("PUT", ["channels", c, "permissions", o]) => E::EditPermissions(id(c)?, id(o)?),
            ("DELETE", ["channels", c, "permissions", o]) => E::DeletePermission(id(c)?, id(o)?),
            ("POST", ["channels", c, "messages"]) => E::CreateMessage(id(c)?),
            ("GET", ["channels", c, "messages"]) => E::ChannelMessages(id(c)?),
            ("GET", ["gateway"]) => E::Gateway,
            _ => return None,
        })
    }

    /// Discord's name for the route, and its major parameter (rate-limit buckets are per major).
    fn template(self) -> (&'static str, Snowflake) {
        use Endpoint as E;
        match self {
            E::MyGuilds => ("GET /users/@me/guilds", 0),
            E::LeaveGuild(_) => ("DELETE /users/@me/guilds/{guild.id}", 0),
            E::Channels(g) => ("GET /guilds/{guild.id}/channels", g),
            E::CreateChannel(g) => ("POST /guilds/{guild.id}/channels", g),
            E::ChannelPositions(g) => ("PATCH /guilds/{guild.id}/channels", g),
            E::Roles(g) => ("GET /guilds/{guild.id}/roles", g),
            E::CreateRole(g) => ("POST /guilds/{guild.id}/roles", g),
            E::RolePositions(g) => ("PATCH /guilds/{guild.id}/roles", g),
            E::RoleMemberCounts(g) => ("GET /guilds/{guild.id}/roles/member-counts", g),
            E::ModifyRole(g, _) => ("PATCH /guilds/{guild.id}/roles/{role.id}", g),
            E::DeleteRole(g, _) => ("DELETE /guilds/{guild.id}/roles/{role.id}", g),
            E::SearchMembers(g) => ("GET /guilds/{guild.id}/members/search", g),
            E::CurrentMember(g) => ("GET /guilds/{guild.id}/members/@me", g),
            E::ModifyCurrentMember(g) => ("PATCH /guilds/{guild.id}/members/@me", g),
            E::Member(g, _) => ("GET /guilds/{guild.id}/members/{user.id}", g),
            E::ModifyMember(g, _) => ("PATCH /guilds/{guild.id}/members/{user.id}", g),
            E::Kick(g, _) => ("DELETE /guilds/{guild.id}/members/{user.id}", g),
            E::AddMemberRole(g, ..) => (
                "PUT /guilds/{guild.id}/members/{user.id}/roles/{role.id}",
                g,
            ),
            E::RemoveMemberRole(g, ..) => (
                "DELETE /guilds/{guild.id}/members/{user.id}/roles/{role.id}",
                g,
            ),
            E::Ban(g, _) => ("PUT /guilds/{guild.id}/bans/{user.id}", g),
            E::ModifyChannel(c) => ("PATCH /channels/{channel.id}", c),
            E::DeleteChannel(c) => ("DELETE /channels/{channel.id}", c),
            E::EditPermissions(c, _) => {
                ("PUT /channels/{channel.id}/permissions/{overwrite.id}", c)
            }
            E::CreateMessage(c) => ("POST /channels/{channel.id}/messages", c),
            E::ChannelMessages(c) => ("GET /channels/{channel.id}/messages", c),
            E::Gateway => ("GET /gateway", 0),
            E::DeletePermission(c, _) => (
                "DELETE /channels/{channel.id}/permissions/{overwrite.id}",
                c,
            ),
        }
    }
}

/// A handler's answer: status and JSON body (none for 204).
pub(super) type Answer = (StatusCode, Option<Value>);

fn error(status: StatusCode, code: u32, message: &str) -> Answer {
    (status, Some(json!({"message": message, "code": code})))
}

fn not_found(what: &str, code: u32) -> Answer {
    error(StatusCode::NOT_FOUND, code, &format!("Unknown {what}"))
}

fn missing_access() -> Answer {
    error(StatusCode::FORBIDDEN, 50001, "Missing Access")
}

fn invalid_body() -> Answer {
    error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body")
}

/// Answers one request, compressed with gzip when the client accepts it (as Discord's edge does).
pub(super) async fn handle(
    shared: &Shared,
    request: http::Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let gzip = request
        .headers()
        .get_all(http::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| coding.split(';').next().is_some_and(|c| c.trim() == "gzip"));
    let response = answer_request(shared, request).await;
    if gzip {
        compress(response).await
    } else {
        response
    }
}

async fn answer_request(
    shared: &Shared,
    request: http::Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    shared.stats.request(request.version());
    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Some(endpoint) = Endpoint::parse(&parts.method, parts.uri.path()) else {
        shared.stats.route("unknown");
        return reply(error(StatusCode::NOT_FOUND, 0, "404: Not Found"), None);
    };
    let (template, major) = endpoint.template();
    shared.stats.route(template);
    if let Endpoint::Gateway = endpoint {
        // Discord answers it to anybody: the token is not looked at.
        shared.stats.processed(template);
        return reply(ok(json!({"url": "wss://gateway.discord.gg"})), None);
    }

    let account = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| shared.authenticate(value));
    let Some(account) = account else {
        return reply(
            error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized"),
            None,
        );
    };
    if let Some(outage) = shared.outage() {
        shared.stats.outage_answer();
        return outage.answer(|retry_after| shared.limiter().refusal(template, retry_after));
    }
    if let Some(status) = shared.take_failure() {
        let answer = (
            status,
            Some(json!({"message": "Upstream failure", "code": 0})),
        );
        return reply(answer, None);
    }
    let verdict = shared.limiter().check(account, template, major);
    let bucket = match verdict {
        Verdict::Allowed(bucket) => bucket,
        Verdict::RouteLimited(bucket) => {
            shared.stats.rate_limited(false);
            return rate_limited(Some(&bucket), bucket.reset_after);
        }
        Verdict::GlobalLimited { retry_after } => {
            shared.stats.rate_limited(true);
            return rate_limited(None, retry_after);
        }
    };
    shared.stats.processed(template);
    let query = parts.uri.query().unwrap_or("");
    let answer = {
        let mut world = shared.world();
        answer(&mut world, endpoint, account, query, &body)
    };
    reply(answer, Some(&bucket))
}

fn answer(
    world: &mut World,
    endpoint: Endpoint,
    account: Snowflake,
    query: &str,
    body: &[u8],
) -> Answer {
    use Endpoint as E;
    let is_bot = world.account(account).is_some_and(|a| a.bot);
    if let E::MyGuilds = endpoint {
        return my_guilds(world, account, query);
    }
    if let E::LeaveGuild(guild) = endpoint {
        let Some(g) = world.guilds.get_mut(&guild) else {
            return not_found("Guild", 10004);
        };
        if g.owner_id == account {
            return error(StatusCode::BAD_REQUEST, 50055, "Invalid Guild");
        }
        return match g.members.remove(&account) {
            Some(_) => (StatusCode::NO_CONTENT, None),
            None => not_found("Guild", 10004),
        };
    }
    // Every other route is for bots, in guilds they are members of.
    if !is_bot {
        return missing_access();
    }
    let guild_id = match endpoint {
        E::ModifyChannel(c)
        | E::DeleteChannel(c)
        | E::EditPermissions(c, _)
        | E::CreateMessage(c)
        | E::ChannelMessages(c)
        | E::DeletePermission(c, _) => match guild_of_channel(world, c) {
            Some(guild) => guild,
            None => return not_found("Channel", 10003),
        },
        E::Channels(g)
        | E::CreateChannel(g)
        | E::ChannelPositions(g)
        | E::Roles(g)
        | E::CreateRole(g)
        | E::RolePositions(g)
        | E::RoleMemberCounts(g)
        | E::ModifyRole(g, _)
        | E::DeleteRole(g, _)
        | E::SearchMembers(g)
        | E::CurrentMember(g)
        | E::ModifyCurrentMember(g)
        | E::Member(g, _)
        | E::ModifyMember(g, _)
        | E::Kick(g, _)
        | E::AddMemberRole(g, ..)
        | E::RemoveMemberRole(g, ..)
        | E::Ban(g, _) => g,
        E::MyGuilds | E::LeaveGuild(_) | E::Gateway => unreachable_endpoint(),
    };
    if !world.guilds.contains_key(&guild_id) {
        return not_found("Guild", 10004);
    }
    if !world.guilds[&guild_id].members.contains_key(&account) {
        return missing_access();
    }
    if let E::CreateMessage(channel) = endpoint {
        return create_message(channel, account, body);
    }
    if let E::ChannelMessages(channel) = endpoint {
        return channel_messages(channel, query);
    }
    let body: Option<Value> = serde_json::from_slice(body).ok();
    match endpoint {
        E::Channels(g) => ok(Value::from(world.guilds[&g].channels.clone())),
        E::Roles(g) => ok(Value::from(world.guilds[&g].roles.clone())),
        E::RoleMemberCounts(g) => {
            let guild = &world.guilds[&g];
            let mut counts = serde_json::Map::new();
            for role in &guild.roles {
                let Some(id) = role["id"]
                    .as_str()
                    .and_then(|id| id.parse::<Snowflake>().ok())
                else {
                    continue;
                };
                let count = guild
                    .members
                    .values()
                    .filter(|m| m.roles.contains(&id))
                    .count();
                counts.insert(id.to_string(), count.into());
            }
            ok(Value::Object(counts))
        }
        E::SearchMembers(g) => search_members(world, g, query),
        E::CurrentMember(g) => member(world, g, account),
        E::Member(g, u) => member(world, g, u),
        E::ModifyCurrentMember(g) => modify_member(world, g, account, body),
        E::ModifyMember(g, u) => modify_member(world, g, u, body),
        E::Kick(g, u) => match world
            .guilds
            .get_mut(&g)
            .and_then(|guild| guild.members.remove(&u))
        {
            Some(_) => (StatusCode::NO_CONTENT, None),
            None => not_found("Member", 10007),
        },
        E::Ban(g, u) => {
            let guild = guild_mut(world, g);
            guild.members.remove(&u);
            guild.bans.insert(u);
            (StatusCode::NO_CONTENT, None)
        }
        E::AddMemberRole(g, u, r) | E::RemoveMemberRole(g, u, r) => {
            let add = matches!(endpoint, E::AddMemberRole(..));
            let guild = guild_mut(world, g);
            if !guild.roles.iter().any(|role| has_id(role, r)) {
                return not_found("Role", 10011);
            }
            let Some(member) = guild.members.get_mut(&u) else {
                return not_found("Member", 10007);
            };
            member.roles.retain(|id| *id != r);
            if add {
                member.roles.push(r);
            }
            (StatusCode::NO_CONTENT, None)
        }
        E::CreateRole(g) => {
            let id = world.ids.next(&mut world.rng);
            let name = text(&body, "name").unwrap_or("new role");
            let color = body.as_ref().and_then(|b| b["color"].as_u64()).unwrap_or(0);
            let mut role = role_json(id, name, 1, color, 0);
            merge(&mut role, &body, &["permissions", "hoist", "mentionable"]);
            guild_mut(world, g).roles.push(role.clone());
            ok(role)
        }
        E::ModifyRole(g, r) => {
            let guild = guild_mut(world, g);
            let Some(role) = guild.roles.iter_mut().find(|role| has_id(role, r)) else {
                return not_found("Role", 10011);
            };
            merge(
                role,
                &body,
                &["name", "color", "permissions", "hoist", "mentionable"],
            );
            if let Some(color) = body.as_ref().and_then(|b| b.get("color")) {
                role["colors"]["primary_color"] = color.clone();
            }
            ok(role.clone())
        }
        E::RolePositions(g) => {
            let Some(Value::Array(moves)) = body else {
                return invalid_body();
            };
            let guild = guild_mut(world, g);
            apply_positions(&mut guild.roles, &moves);
            let mut roles = guild.roles.clone();
            roles.sort_by_key(|role| role["position"].as_i64());
            ok(Value::from(roles))
        }
        E::DeleteRole(g, r) => {
            if g == r {
                return error(StatusCode::BAD_REQUEST, 50028, "Invalid Role");
            }
            let guild = guild_mut(world, g);
            let before = guild.roles.len();
            guild.roles.retain(|role| !has_id(role, r));
            if guild.roles.len() == before {
                return not_found("Role", 10011);
            }
            for member in guild.members.values_mut() {
                member.roles.retain(|id| *id != r);
            }
            (StatusCode::NO_CONTENT, None)
        }
        E::CreateChannel(g) => {
            let Some(name) = text(&body, "name").map(str::to_owned) else {
                return invalid_body();
            };
            let id = world.ids.next(&mut world.rng);
            let kind = body.as_ref().and_then(|b| b["type"].as_u64()).unwrap_or(0);
            let guild = guild_mut(world, g);
            let mut channel = json!({
                "id": id.to_string(), "type": kind, "flags": 0, "guild_id": g.to_string(), "name": name,
                "parent_id": null, "position": guild.channels.len(), "permission_overwrites": [],
                "nsfw": false, "topic": null, "last_message_id": null, "rate_limit_per_user": 0,
            });
            merge(&mut channel, &body, &["parent_id", "topic", "nsfw"]);
            guild.channels.push(channel.clone());
            (StatusCode::CREATED, Some(channel))
        }
        E::ChannelPositions(g) => {
            let Some(Value::Array(moves)) = body else {
                return invalid_body();
            };
            apply_positions(&mut guild_mut(world, g).channels, &moves);
            (StatusCode::NO_CONTENT, None)
        }
        E::ModifyChannel(c) => {
            let guild = guild_mut(world, guild_id);
            let Some(channel) = find_channel(guild, c) else {
                return not_found("Channel", 10003);
            };
            merge(
                channel,
                &body,
                &["name", "topic", "nsfw", "parent_id", "rate_limit_per_user"],
            );
            ok(channel.clone())
        }
        E::DeleteChannel(c) => {
            let guild = guild_mut(world, guild_id);
            let index = guild.channels.iter().position(|ch| has_id(ch, c));
            match index {
                Some(index) => ok(guild.channels.remove(index)),
                None => not_found("Channel", 10003),
            }
        }
        E::EditPermissions(c, o) | E::DeletePermission(c, o) => {
            let edit = matches!(endpoint, E::EditPermissions(..));
            if edit && body.is_none() {
                return invalid_body();
            }
            let guild = guild_mut(world, guild_id);
            let Some(channel) = find_channel(guild, c) else {
                return not_found("Channel", 10003);
            };
            let Some(overwrites) = channel["permission_overwrites"].as_array_mut() else {
                return invalid_body();
            };
            overwrites.retain(|overwrite| !has_id(overwrite, o));
            if let (true, Some(body)) = (edit, body) {
                overwrites.push(json!({
                    "id": o.to_string(),
                    "type": body["type"].as_u64().unwrap_or(0),
                    "allow": body["allow"].as_str().unwrap_or("0"),
                    "deny": body["deny"].as_str().unwrap_or("0"),
                }));
            }
            (StatusCode::NO_CONTENT, None)
        }
        E::MyGuilds
        | E::LeaveGuild(_)
        | E::CreateMessage(_)
        | E::ChannelMessages(_)
        | E::Gateway => unreachable_endpoint(),
    }
}

/// A message as Discord answers its creation: the body (JSON, or multipart with files) becomes its
/// content or one attachment whose `size` is the body's length. The answer also carries
/// `body_fnv1a`, a hash of the bytes received, so tests can tell an upload arrived byte for byte.
fn create_message(channel: Snowflake, author: Snowflake, body: &[u8]) -> Answer {
    let content = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|b| b["content"].as_str().map(str::to_owned));
    let attachments = match content {
        Some(_) => json!([]),
        None => json!([{"id": "1", "filename": "upload", "size": body.len()}]),
    };
    let message = json!({
        "id": (channel ^ 0x5eed).to_string(),
        "channel_id": channel.to_string(),
        "author": {"id": author.to_string()},
        "content": content.unwrap_or_default(),
        "attachments": attachments,
        "body_fnv1a": format!("{:016x}", fnv1a(body)),
    });
    (StatusCode::OK, Some(message))
}

/// `GET /channels/{c}/messages` (`limit` 1 to 100, 50 by default): the newest messages, each with
/// 2,000 characters of content and an embed of 4,096, generated from the channel id; about 6.5 KB a
/// message, a large answer for tests of what streams through.
fn channel_messages(channel: Snowflake, query: &str) -> Answer {
    let limit = match parse_query(query).get("limit").map(|l| l.parse::<usize>()) {
        None => 50,
        Some(Ok(limit)) if (1..=100).contains(&limit) => limit,
        Some(_) => return invalid_body(),
    };
    let text = |seed: u64, len: usize| -> String {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b'a' + (state % 26) as u8)
            })
            .collect()
    };
    let messages: Vec<Value> = (0..limit as u64)
        .map(|index| {
            let id = channel.wrapping_sub(index + 1);
            json!({
                "id": id.to_string(), "type": 0, "channel_id": channel.to_string(),
                "author": {"id": "1", "username": "archive", "discriminator": "0"},
                "content": text(id, 2000), "timestamp": "2026-01-01T00:00:00.000000+00:00",
                "embeds": [{"type": "rich", "description": text(!id, 4096)}],
                "attachments": [], "mentions": [], "pinned": false, "tts": false,
            })
        })
        .collect();
    ok(Value::from(messages))
}

/// 64-bit FNV-1a, the server's checksum of what it received.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Routes answered before the guild checks; kept out of the guild match on purpose.
fn unreachable_endpoint() -> ! {
    unreachable!("answered before the guild checks")
}

fn ok(value: Value) -> Answer {
    (StatusCode::OK, Some(value))
}

fn guild_mut(world: &mut World, guild: Snowflake) -> &mut Guild {
    world.guilds.get_mut(&guild).expect("checked by the caller")
}

/// Whether a JSON object's `id` is `id`.
fn has_id(object: &Value, id: Snowflake) -> bool {
    object["id"]
        .as_str()
        .and_then(|s| s.parse::<Snowflake>().ok())
        == Some(id)
}

fn guild_of_channel(world: &World, channel: Snowflake) -> Option<Snowflake> {
    world
        .guilds
        .values()
        .find(|guild| guild.channels.iter().any(|c| has_id(c, channel)))
        .map(|guild| guild.id)
}

fn find_channel(guild: &mut Guild, channel: Snowflake) -> Option<&mut Value> {
    guild.channels.iter_mut().find(|c| has_id(c, channel))
}

fn text<'a>(body: &'a Option<Value>, field: &str) -> Option<&'a str> {
    body.as_ref()?.get(field)?.as_str()
}

fn merge(target: &mut Value, body: &Option<Value>, fields: &[&str]) {
    let Some(body) = body else { return };
    for field in fields {
        if let Some(value) = body.get(*field) {
            target[*field] = value.clone();
        }
    }
}

fn apply_positions(items: &mut [Value], moves: &[Value]) {
    let positions: HashMap<&str, &Value> = moves
        .iter()
        .filter_map(|m| Some((m["id"].as_str()?, m.get("position")?)))
        .collect();
    for item in items {
        let id = item["id"].as_str().unwrap_or_default().to_owned();
        if let Some(position) = positions.get(id.as_str()) {
            item["position"] = (*position).clone();
        }
    }
}

fn member(world: &World, guild: Snowflake, user: Snowflake) -> Answer {
    match world.member_json(&world.guilds[&guild], user) {
        Some(member) => ok(member),
        None => not_found("Member", 10007),
    }
}

fn modify_member(
    world: &mut World,
    guild: Snowflake,
    user: Snowflake,
    body: Option<Value>,
) -> Answer {
    let Some(entry) = guild_mut(world, guild).members.get_mut(&user) else {
        return not_found("Member", 10007);
    };
    if let Some(body) = &body {
        if let Some(nick) = body.get("nick") {
            entry.nick = nick.as_str().map(str::to_owned);
        }
        if let Some(roles) = body.get("roles").and_then(Value::as_array) {
            entry.roles = roles
                .iter()
                .filter_map(|r| r.as_str()?.parse().ok())
                .collect();
        }
    }
    member(world, guild, user)
}

fn search_members(world: &World, guild: Snowflake, query: &str) -> Answer {
    let params = parse_query(query);
    let Some(prefix) = params.get("query") else {
        return invalid_body();
    };
    let limit = params
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(1usize);
    let guild = &world.guilds[&guild];
    let found: Vec<Value> = guild
        .members
        .keys()
        .filter(|user| {
            world
                .account(**user)
                .is_some_and(|a| a.username.starts_with(prefix.as_str()))
        })
        .take(limit)
        .filter_map(|user| world.member_json(guild, *user))
        .collect();
    ok(Value::from(found))
}

fn my_guilds(world: &World, account: Snowflake, query: &str) -> Answer {
    let params = parse_query(query);
    let id = |name: &str| params.get(name).and_then(|v| v.parse::<Snowflake>().ok());
    let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
        None => 200,
        Some(Ok(limit)) if (1..=200).contains(&limit) => limit,
        Some(_) => return invalid_body(),
    };
    let with_counts = params.get("with_counts").is_some_and(|v| v == "true");
    let (after, before) = (id("after"), id("before"));
    let guilds: Vec<Value> = world
        .guilds
        .values()
        .filter(|guild| guild.members.contains_key(&account))
        .filter(|guild| !matches!(after, Some(after) if guild.id <= after))
        .filter(|guild| !matches!(before, Some(before) if guild.id >= before))
        .take(limit)
        .map(|guild| world.my_guild_json(guild, account, with_counts))
        .collect();
    ok(Value::from(guilds))
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The same answer, gzip-compressed, with `Content-Encoding: gzip`.
async fn compress(response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    use std::io::Write as _;
    let (mut parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if body.is_empty() {
        return Response::from_parts(parts, Full::new(body));
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = encoder
        .write_all(&body)
        .and_then(|()| encoder.finish())
        .expect("writes to memory");
    parts.headers.insert(
        http::header::CONTENT_ENCODING,
        HeaderValue::from_static("gzip"),
    );
    parts.headers.insert(
        http::header::VARY,
        HeaderValue::from_static("Accept-Encoding"),
    );
    Response::from_parts(parts, Full::new(Bytes::from(compressed)))
}

pub(super) fn reply(answer: Answer, bucket: Option<&BucketHeaders>) -> Response<Full<Bytes>> {
    let (status, body) = answer;
    let body = body.map(|v| Bytes::from(v.to_string())).unwrap_or_default();
    let has_body = !body.is_empty();
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if has_body {
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    headers.insert("via", HeaderValue::from_static("1.1 local-discord"));
    headers.insert(
        http::header::SET_COOKIE,
        HeaderValue::from_static("__dcfduid=local; HttpOnly; Secure; SameSite=Lax; Path=/"),
    );
    if let Some(bucket) = bucket {
        bucket_headers(headers, bucket);
    }
    response
}

fn bucket_headers(headers: &mut http::HeaderMap, bucket: &BucketHeaders) {
    let value = |text: String| HeaderValue::from_str(&text).expect("ascii");
    headers.insert("x-ratelimit-limit", value(bucket.limit.to_string()));
    headers.insert("x-ratelimit-remaining", value(bucket.remaining.to_string()));
    headers.insert(
        "x-ratelimit-reset",
        value(format!("{:.3}", bucket.reset_at())),
    );
    headers.insert(
        "x-ratelimit-reset-after",
        value(format!("{:.3}", bucket.reset_after)),
    );
    headers.insert("x-ratelimit-bucket", value(bucket.bucket.clone()));
}

pub(super) fn rate_limited(
    bucket: Option<&BucketHeaders>,
    retry_after: f64,
) -> Response<Full<Bytes>> {
    let retry_after = (retry_after * 1000.0).ceil() / 1000.0;
    let global = bucket.is_none();
    let body = json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": global});
    let mut response = reply((StatusCode::TOO_MANY_REQUESTS, Some(body)), bucket);
    let headers = response.headers_mut();
    let whole_seconds = retry_after.ceil().max(1.0) as u64;
    headers.insert(http::header::RETRY_AFTER, HeaderValue::from(whole_seconds));
    if global {
        headers.insert("x-ratelimit-global", HeaderValue::from_static("true"));
        headers.insert("x-ratelimit-scope", HeaderValue::from_static("global"));
    } else {
        headers.insert("x-ratelimit-scope", HeaderValue::from_static("user"));
    }
    response
}
