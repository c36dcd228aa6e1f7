//! The write flow: what a successful Discord write changes in the cache.
//!
//! Where Discord answers with the changed object, the cached entry is updated from it (no refetch);
//! where it answers 204, the tags of what changed are invalidated. Entries updated in place belong to
//! the credential that made the write; other credentials' copies of the same object are invalidated
//! when the write replaces a whole entry, and expire by TTL (or by the gateway event Discord sends) when
//! the write edits one item of a list.

use bytes::Bytes;
use cache_core::{EntryUpdate, WriteEffects};
use serde_json::Value;

use crate::channel_index::ChannelIndex;
use crate::credential::Credential;
use crate::json_list::{self, ListEdit};
use crate::keys::tags;
use crate::route::{Route, RouteQuery, Snowflake};
use crate::route_table::{self, Api, DiscordWrite};
use crate::{CachedResponse, DiscordTtls};

/// Channel types Discord does not list in `GET /guilds/{g}/channels`: threads.
const THREAD_TYPES: [u64; 3] = [10, 11, 12];

type Effects = WriteEffects<CachedResponse>;

/// What the write flow reads of the context.
pub(crate) struct WriteContext<'a> {
    pub(crate) ttls: &'a DiscordTtls,
    pub(crate) channels: &'a ChannelIndex,
}

/// The effects of the successful write `write` answered by `value`.
pub(crate) fn effects(
    context: &WriteContext<'_>,
    write: DiscordWrite,
    value: &CachedResponse,
) -> Effects {
    let DiscordWrite {
        route,
        credential,
        api,
    } = write;
    let credential = credential.as_ref();
    let effects = match route {
        Route::ModifyGuildMember { guild, user } => {
            put_member(context, guild, user, credential, value)
        }
        Route::ModifyCurrentMember { guild } => {
            match json_list::object(value.body()).and_then(|member| {
                member
                    .get("user")
                    .and_then(|u| json_list::id_field(u, "id"))
            }) {
                Some(user) => put_member(context, guild, user, credential, value),
                None => Effects::none().invalidate_tag(tags::guild_members(guild)),
            }
        }
        Route::AddGuildMemberRole { guild, user, .. }
        | Route::RemoveGuildMemberRole { guild, user, .. }
        | Route::RemoveGuildMember { guild, user }
        | Route::CreateGuildBan { guild, user } => {
            Effects::none().invalidate_tag(tags::guild_member(guild, user))
        }
        Route::CreateGuildRole { guild } | Route::ModifyGuildRole { guild, .. } => {
            match json_list::object(value.body()) {
                Some(role) => edit_list(
                    context,
                    Route::GuildRoles { guild },
                    credential,
                    ListEdit::Upsert(role),
                ),
                None => Effects::none().invalidate_tag(tags::guild_roles(guild)),
            }
        }
        Route::ModifyGuildRolePositions { guild } => {
            let effects = Effects::none().invalidate_tag(tags::guild_roles(guild));
            match (credential, json_list::ids_of_list(value.body())) {
                (Some(credential), Some(_)) => put_entry(
                    context,
                    Route::GuildRoles { guild },
                    credential,
                    value.body(),
                    effects,
                ),
                _ => effects,
            }
        }
        Route::DeleteGuildRole { guild, .. } => Effects::none()
            .invalidate_tag(tags::guild_roles(guild))
            .invalidate_tag(tags::guild_members(guild)),
        Route::CreateGuildChannel { guild } => match json_list::object(value.body()) {
            Some(channel) => {
                if let Some(id) = json_list::id_field(&channel, "id") {
                    context.channels.learn(guild, [id]);
                }
                edit_list(
                    context,
                    Route::GuildChannels { guild },
                    credential,
                    ListEdit::Upsert(channel),
                )
            }
            None => Effects::none().invalidate_tag(tags::guild_channels(guild)),
        },
        Route::ModifyGuildChannelPositions { guild } => {
            Effects::none().invalidate_tag(tags::guild_channels(guild))
        }
        Route::ModifyChannel { channel } => {
            modified_channel(context, channel, credential, value.body(), false)
        }
        Route::DeleteChannel { channel } => {
            let effects = modified_channel(context, channel, credential, value.body(), true);
            context.channels.forget(channel);
            effects
        }
        Route::EditChannelPermissions { channel, .. }
        | Route::DeleteChannelPermission { channel, .. } => {
            match context.channels.guild_of(channel) {
                Some(guild) => Effects::none().invalidate_tag(tags::guild_channels(guild)),
                None => Effects::none().invalidate_tag(tags::CHANNELS),
            }
        }
        Route::LeaveGuild { guild } => match credential {
            Some(Credential::User(user)) => Effects::none().invalidate_tag(tags::user(user)),
            Some(Credential::Bot(bot)) => Effects::none()
                .invalidate_tag(tags::bot(*bot))
                .invalidate_tag(tags::guild(guild)),
            None => Effects::none()
                .invalidate_tag(tags::BOT_GUILDS)
                .invalidate_tag(tags::guild(guild)),
        },
        Route::CurrentUserGuilds
        | Route::GuildChannels { .. }
        | Route::GuildRoles { .. }
        | Route::GuildMember { .. } => Effects::none(),
    };
    let effects = match api {
        Api::Versioned => effects,
        Api::Other => removing_updated(effects),
    };
    tracing::debug!(
        ?route,
        ?api,
        tags = ?effects.invalidate_tags,
        updates = effects.updates.len(),
        "discord write: cache effects"
    );
    effects
}

/// The effects of a write Discord may or may not have applied (a 5xx answer, a timeout, a connection
/// lost after sending): every entry it could have changed is invalidated, since there is no answer to
/// update them from.
pub(crate) fn uncertain_effects(context: &WriteContext<'_>, write: DiscordWrite) -> Effects {
    let DiscordWrite {
        route, credential, ..
    } = write;
    let channel_lists = |channel| match context.channels.guild_of(channel) {
        Some(guild) => Effects::none().invalidate_tag(tags::guild_channels(guild)),
        None => Effects::none().invalidate_tag(tags::CHANNELS),
    };
    let effects = match route {
        Route::ModifyGuildMember { guild, user }
        | Route::AddGuildMemberRole { guild, user, .. }
        | Route::RemoveGuildMemberRole { guild, user, .. }
        | Route::RemoveGuildMember { guild, user }
        | Route::CreateGuildBan { guild, user } => {
            Effects::none().invalidate_tag(tags::guild_member(guild, user))
        }
        Route::ModifyCurrentMember { guild } => {
            Effects::none().invalidate_tag(tags::guild_members(guild))
        }
        Route::CreateGuildRole { guild }
        | Route::ModifyGuildRole { guild, .. }
        | Route::ModifyGuildRolePositions { guild } => {
            Effects::none().invalidate_tag(tags::guild_roles(guild))
        }
        Route::DeleteGuildRole { guild, .. } => Effects::none()
            .invalidate_tag(tags::guild_roles(guild))
            .invalidate_tag(tags::guild_members(guild)),
        Route::CreateGuildChannel { guild } | Route::ModifyGuildChannelPositions { guild } => {
            Effects::none().invalidate_tag(tags::guild_channels(guild))
        }
        Route::ModifyChannel { channel }
        | Route::DeleteChannel { channel }
        | Route::EditChannelPermissions { channel, .. }
        | Route::DeleteChannelPermission { channel, .. } => channel_lists(channel),
        Route::LeaveGuild { guild } => match credential.as_ref() {
            Some(Credential::User(user)) => Effects::none().invalidate_tag(tags::user(user)),
            Some(Credential::Bot(bot)) => Effects::none()
                .invalidate_tag(tags::bot(*bot))
                .invalidate_tag(tags::guild(guild)),
            None => Effects::none()
                .invalidate_tag(tags::BOT_GUILDS)
                .invalidate_tag(tags::guild(guild)),
        },
        Route::CurrentUserGuilds
        | Route::GuildChannels { .. }
        | Route::GuildRoles { .. }
        | Route::GuildMember { .. } => Effects::none(),
    };
    tracing::debug!(?route, tags = ?effects.invalidate_tags, "discord write of unknown outcome: invalidating what it could change");
    effects
}

/// The effects with every in-place update turned into a removal of its entry: for an answer whose
/// shape may not be the entry's.
fn removing_updated(effects: Effects) -> Effects {
    let WriteEffects {
        invalidate_tags,
        remove_keys,
        updates,
    } = effects;
    let removed = updates.into_iter().map(|update| match update {
        EntryUpdate::Put { key, .. } | EntryUpdate::Modify { key, .. } => key,
    });
    let mut effects = Effects::none();
    for tag in invalidate_tags {
        effects = effects.invalidate_tag(tag);
    }
    for key in remove_keys.into_iter().chain(removed) {
        effects = effects.remove_key(key);
    }
    effects
}

/// Every copy of the member is invalidated, then the writer's copy is replaced by the answer.
fn put_member(
    context: &WriteContext<'_>,
    guild: Snowflake,
    user: Snowflake,
    credential: Option<&Credential>,
    value: &CachedResponse,
) -> Effects {
    let effects = Effects::none().invalidate_tag(tags::guild_member(guild, user));
    match (credential, json_list::object(value.body())) {
        (Some(credential), Some(_)) => put_entry(
            context,
            Route::GuildMember { guild, user },
            credential,
            value.body(),
            effects,
        ),
        _ => effects,
    }
}

/// Adds a put of `body` as the cached answer of `read` for `credential`.
fn put_entry(
    context: &WriteContext<'_>,
    read: Route,
    credential: &Credential,
    body: &Bytes,
    effects: Effects,
) -> Effects {
    let Some(entry) = route_table::entry(context.ttls, read, &RouteQuery::default(), credential)
    else {
        return effects;
    };
    effects.update(EntryUpdate::Put {
        key: entry.key,
        value: CachedResponse::json(body.clone()),
        ttl: entry.ttl,
        tags: entry.tags,
        stale: context.ttls.stale,
    })
}

/// Edits the writer's cached list of `read`; without a credential there is no entry of its own to edit,
/// so every copy is invalidated instead.
fn edit_list(
    context: &WriteContext<'_>,
    read: Route,
    credential: Option<&Credential>,
    edit: ListEdit,
) -> Effects {
    let entry = credential.and_then(|credential| {
        route_table::entry(context.ttls, read, &RouteQuery::default(), credential)
    });
    let Some(entry) = entry else {
        let tag = match read {
            Route::GuildRoles { guild } => tags::guild_roles(guild),
            Route::GuildChannels { guild } => tags::guild_channels(guild),
            _ => return Effects::none(),
        };
        return Effects::none().invalidate_tag(tag);
    };
    Effects::none().update(EntryUpdate::Modify {
        key: entry.key,
        modify: Box::new(move |cached: CachedResponse| {
            let body = json_list::edit_list(cached.body(), edit)?;
            Some(cached.with_body(body))
        }),
        ttl: entry.ttl,
        tags: entry.tags,
        stale: context.ttls.stale,
    })
}

/// A channel modified or deleted by id: its guild comes from the answer (or the index).
fn modified_channel(
    context: &WriteContext<'_>,
    channel: Snowflake,
    credential: Option<&Credential>,
    body: &Bytes,
    deleted: bool,
) -> Effects {
    let object = json_list::object(body);
    let guild = object
        .as_ref()
        .and_then(|object| json_list::id_field(object, "guild_id"))
        .or_else(|| context.channels.guild_of(channel));
    let Some(guild) = guild else {
        return match object {
            // An answer without `guild_id`: a DM or group channel, in no guild's list.
            Some(_) => Effects::none(),
            // An answer that cannot be read (compressed, not JSON) for a channel this process has not
            // seen: its guild is unknown, so every channel list goes, as for permission overwrites.
            None => Effects::none().invalidate_tag(tags::CHANNELS),
        };
    };
    let is_thread = object
        .as_ref()
        .and_then(|object| object.get("type").and_then(Value::as_u64))
        .is_some_and(|kind| THREAD_TYPES.contains(&kind));
    if is_thread {
        return Effects::none();
    }
    let read = Route::GuildChannels { guild };
    match object {
        Some(_) if deleted => edit_list(context, read, credential, ListEdit::Remove(channel)),
        Some(object) => {
            context.channels.learn(guild, [channel]);
            edit_list(context, read, credential, ListEdit::Upsert(object))
        }
        None => Effects::none().invalidate_tag(tags::guild_channels(guild)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel_write(route: Route, body: &'static [u8]) -> Effects {
        let (ttls, channels) = (DiscordTtls::default(), ChannelIndex::default());
        let context = WriteContext {
            ttls: &ttls,
            channels: &channels,
        };
        let write = DiscordWrite {
            route,
            credential: Some(Credential::Bot(7)),
            api: Api::Versioned,
        };
        effects(
            &context,
            write,
            &CachedResponse::json(Bytes::from_static(body)),
        )
    }

    #[test]
    fn an_unreadable_channel_answer_for_an_unseen_channel_invalidates_every_channel_list() {
        for route in [
            Route::ModifyChannel { channel: 5 },
            Route::DeleteChannel { channel: 5 },
        ] {
            let effects = channel_write(route, b"\x1f\x8b\x08 not json");
            assert_eq!(effects.invalidate_tags, [tags::CHANNELS], "{route:?}");
            assert!(effects.updates.is_empty());
        }
    }

    #[test]
    fn a_channel_without_a_guild_changes_nothing() {
        let effects = channel_write(
            Route::ModifyChannel { channel: 5 },
            br#"{"id":"5","type":1}"#,
        );
        assert!(effects.is_empty(), "{effects:?}");
    }
}
