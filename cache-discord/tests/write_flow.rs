//! Each write route, sent through the cache and the real HTTP client to the local Discord-like server,
//! updates or invalidates the cached entries as the crate documents.

mod support;

use http::Method;
use serde_json::{json, Value};
use support::{ids, json, quiet, Harness};

struct Fixture {
    harness: Harness,
    bot: String,
    guild: u64,
}

impl Fixture {
    async fn new() -> Self {
        let harness = Harness::start(quiet()).await;
        let bot = harness.bot().bot_authorization();
        // The most populated guild: tests need a few members besides the bot.
        let guild = harness
            .server
            .guilds()
            .into_iter()
            .max_by_key(|g| g.members.len())
            .unwrap()
            .id;
        Self {
            harness,
            bot,
            guild,
        }
    }

    fn info(&self) -> discord_test_server::FixtureGuild {
        self.harness
            .server
            .guilds()
            .into_iter()
            .find(|g| g.id == self.guild)
            .unwrap()
    }

    /// Guilds other than the fixture's.
    fn others(&self) -> Vec<discord_test_server::FixtureGuild> {
        self.harness
            .server
            .guilds()
            .into_iter()
            .filter(|g| g.id != self.guild)
            .collect()
    }

    async fn get(&self, path: &str) -> cache_discord::CachedResponse {
        self.harness.get(path, &self.bot).await
    }

    async fn write(&self, method: Method, path: &str, body: Option<Value>) -> u16 {
        self.harness
            .send(method, path, &self.bot, body)
            .await
            .status()
    }

    /// Runs `read` and says whether it reached the server.
    async fn went_upstream(&self, path: &str) -> (bool, cache_discord::CachedResponse) {
        let before = self.harness.upstream();
        let answer = self.get(path).await;
        (self.harness.upstream() > before, answer)
    }

    fn member_path(&self, user: u64) -> String {
        format!("/guilds/{}/members/{user}", self.guild)
    }

    fn some_member(&self, index: usize) -> u64 {
        let bot = self.harness.bot().id;
        self.info()
            .members
            .iter()
            .copied()
            .filter(|m| *m != bot)
            .nth(index)
            .expect("enough members")
    }

    fn roles_path(&self) -> String {
        format!("/guilds/{}/roles", self.guild)
    }

    fn channels_path(&self) -> String {
        format!("/guilds/{}/channels", self.guild)
    }
}

fn names(response: &cache_discord::CachedResponse) -> Vec<String> {
    json(response)
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn modify_member_replaces_the_cached_member() {
    let f = Fixture::new().await;
    let member = f.member_path(f.some_member(0));
    f.get(&member).await;
    assert_eq!(
        f.write(Method::PATCH, &member, Some(json!({"nick": "Renamed"})))
            .await,
        200
    );
    let (upstream, answer) = f.went_upstream(&member).await;
    assert!(!upstream, "updated from the write's answer");
    assert_eq!(json(&answer)["nick"], "Renamed");
    assert_eq!(
        answer.header("content-type"),
        Some(&b"application/json"[..])
    );
}

#[tokio::test]
async fn modify_member_refreshes_other_credentials_copies_too() {
    let f = Fixture::new().await;
    let other = f.harness.server.add_bot("Other Bot", &[f.guild]);
    let member = f.member_path(f.some_member(0));
    f.get(&member).await;
    f.harness.get(&member, &other.bot_authorization()).await;
    f.write(Method::PATCH, &member, Some(json!({"nick": "Everywhere"})))
        .await;

    let before = f.harness.upstream();
    let theirs = f.harness.get(&member, &other.bot_authorization()).await;
    assert_eq!(
        f.harness.upstream(),
        before + 1,
        "the other bot's copy was invalidated"
    );
    assert_eq!(json(&theirs)["nick"], "Everywhere");
    let (upstream, ours) = f.went_upstream(&member).await;
    assert!(!upstream);
    assert_eq!(json(&ours)["nick"], "Everywhere");
}

#[tokio::test]
async fn modify_current_member_replaces_the_member_named_in_the_answer() {
    let f = Fixture::new().await;
    let me = f.member_path(f.harness.bot().id);
    f.get(&me).await;
    let path = format!("/guilds/{}/members/@me", f.guild);
    assert_eq!(
        f.write(Method::PATCH, &path, Some(json!({"nick": "Helper Bot"})))
            .await,
        200
    );
    let (upstream, answer) = f.went_upstream(&me).await;
    assert!(!upstream);
    assert_eq!(json(&answer)["nick"], "Helper Bot");
}

#[tokio::test]
async fn member_role_add_and_remove_invalidate_the_member() {
    let f = Fixture::new().await;
    let user = f.some_member(0);
    let member = f.member_path(user);
    let role = *f.info().roles.last().unwrap();
    let role_path = format!("{member}/roles/{role}");

    f.get(&member).await;
    assert_eq!(f.write(Method::PUT, &role_path, None).await, 204);
    let (upstream, answer) = f.went_upstream(&member).await;
    assert!(upstream, "invalidated");
    assert!(json(&answer)["roles"]
        .as_array()
        .unwrap()
        .contains(&json!(role.to_string())));
    assert!(!f.went_upstream(&member).await.0, "cached again");

    assert_eq!(f.write(Method::DELETE, &role_path, None).await, 204);
    let (upstream, answer) = f.went_upstream(&member).await;
    assert!(upstream);
    assert!(!json(&answer)["roles"]
        .as_array()
        .unwrap()
        .contains(&json!(role.to_string())));
}

#[tokio::test]
async fn kick_and_ban_invalidate_the_member() {
    let f = Fixture::new().await;
    let (kicked, banned, bystander) = (f.some_member(0), f.some_member(1), f.some_member(2));
    for user in [kicked, banned, bystander] {
        f.get(&f.member_path(user)).await;
    }
    assert_eq!(
        f.write(Method::DELETE, &f.member_path(kicked), None).await,
        204
    );
    let ban = format!("/guilds/{}/bans/{banned}", f.guild);
    assert_eq!(
        f.write(
            Method::PUT,
            &ban,
            Some(json!({"delete_message_seconds": 0}))
        )
        .await,
        204
    );
    for user in [kicked, banned] {
        let (upstream, answer) = f.went_upstream(&f.member_path(user)).await;
        assert!(upstream);
        assert_eq!(answer.status(), 404);
    }
    assert!(
        !f.went_upstream(&f.member_path(bystander)).await.0,
        "other members untouched"
    );
}

#[tokio::test]
async fn create_and_modify_role_edit_the_cached_role_list() {
    let f = Fixture::new().await;
    let before = f.get(&f.roles_path()).await;
    let status = f
        .write(
            Method::POST,
            &f.roles_path(),
            Some(json!({"name": "Raid Leader", "color": 3447003})),
        )
        .await;
    assert_eq!(status, 200);
    let (upstream, roles) = f.went_upstream(&f.roles_path()).await;
    assert!(!upstream, "updated in place");
    assert_eq!(ids(&roles).len(), ids(&before).len() + 1);
    assert_eq!(names(&roles).last().unwrap(), "Raid Leader");

    let role = ids(&before)[1].clone();
    let path = format!("{}/{role}", f.roles_path());
    assert_eq!(
        f.write(Method::PATCH, &path, Some(json!({"name": "Senior Mod"})))
            .await,
        200
    );
    let (upstream, roles) = f.went_upstream(&f.roles_path()).await;
    assert!(!upstream);
    let edited = json(&roles);
    let edited = edited
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == role.as_str())
        .unwrap()
        .clone();
    assert_eq!(edited["name"], "Senior Mod");
    assert_eq!(
        ids(&roles).len(),
        ids(&before).len() + 1,
        "replaced, not added"
    );

    // The edited list is what Discord now has.
    f.harness
        .discord
        .invalidate_discord_guild_cache(f.guild)
        .await
        .unwrap();
    let truth = f.get(&f.roles_path()).await;
    assert_eq!(json(&truth), json(&roles));
}

#[tokio::test]
async fn writes_on_unversioned_api_still_change_the_cache() {
    let f = Fixture::new().await;
    let roles = f.roles_path();
    let before = f.get(&roles).await;
    let status = f
        .write(
            Method::POST,
            &f.harness.unversioned_url(&f.roles_path()),
            Some(json!({"name": "Unversioned Role"})),
        )
        .await;
    assert_eq!(status, 200);
    let (upstream, after) = f.went_upstream(&roles).await;
    assert!(
        upstream,
        "the writer's cached role list was dropped, not edited"
    );
    assert_eq!(ids(&after).len(), ids(&before).len() + 1);
    assert_eq!(names(&after).last().unwrap(), "Unversioned Role");

    let member = f.member_path(f.some_member(0));
    f.get(&member).await;
    let status = f
        .write(
            Method::PATCH,
            &f.harness.unversioned_url(&member),
            Some(json!({"nick": "Unversioned"})),
        )
        .await;
    assert_eq!(status, 200);
    let (upstream, answer) = f.went_upstream(&member).await;
    assert!(upstream, "every copy of the member invalidated");
    assert_eq!(json(&answer)["nick"], "Unversioned");
}

#[tokio::test]
async fn reorder_roles_replaces_the_whole_list() {
    let f = Fixture::new().await;
    let roles = f.get(&f.roles_path()).await;
    let ids = ids(&roles);
    let moves: Vec<Value> = ids[1..]
        .iter()
        .rev()
        .enumerate()
        .map(|(i, id)| json!({"id": id, "position": i + 1}))
        .collect();
    let answer = f
        .harness
        .send(
            Method::PATCH,
            &f.roles_path(),
            &f.bot,
            Some(Value::from(moves)),
        )
        .await;
    assert_eq!(answer.status(), 200);
    let (upstream, cached) = f.went_upstream(&f.roles_path()).await;
    assert!(!upstream);
    assert_eq!(cached.body(), answer.body());
    assert_eq!(
        json(&cached)[1]["id"],
        ids.last().unwrap().as_str(),
        "new order"
    );
}

#[tokio::test]
async fn delete_role_invalidates_roles_and_members() {
    let f = Fixture::new().await;
    let user = f.some_member(0);
    let role = *f.info().roles.last().unwrap();
    let member = f.member_path(user);
    f.write(Method::PUT, &format!("{member}/roles/{role}"), None)
        .await;
    f.get(&f.roles_path()).await;
    f.get(&member).await;
    f.get(&f.channels_path()).await;

    assert_eq!(
        f.write(Method::DELETE, &format!("{}/{role}", f.roles_path()), None)
            .await,
        204
    );
    let (upstream, roles) = f.went_upstream(&f.roles_path()).await;
    assert!(upstream);
    assert!(!support::ids(&roles).contains(&role.to_string()));
    let (upstream, answer) = f.went_upstream(&member).await;
    assert!(upstream, "members lose the role: their entries go");
    assert!(!json(&answer)["roles"]
        .as_array()
        .unwrap()
        .contains(&json!(role.to_string())));
    assert!(
        !f.went_upstream(&f.channels_path()).await.0,
        "channels untouched"
    );
}

#[tokio::test]
async fn channel_create_modify_and_delete_edit_the_cached_channel_list() {
    let f = Fixture::new().await;
    let before = ids(&f.get(&f.channels_path()).await);

    let created = f
        .harness
        .send(
            Method::POST,
            &f.channels_path(),
            &f.bot,
            Some(json!({"name": "raid-planning", "type": 0})),
        )
        .await;
    assert_eq!(created.status(), 201);
    let new_id = json(&created)["id"].as_str().unwrap().to_owned();
    let (upstream, list) = f.went_upstream(&f.channels_path()).await;
    assert!(!upstream);
    assert_eq!(ids(&list), [before.clone(), vec![new_id.clone()]].concat());

    let channel = format!("/channels/{}", before[1]);
    assert_eq!(
        f.write(Method::PATCH, &channel, Some(json!({"name": "renamed"})))
            .await,
        200
    );
    let (upstream, list) = f.went_upstream(&f.channels_path()).await;
    assert!(!upstream);
    assert_eq!(names(&list)[1], "renamed");

    assert_eq!(
        f.write(Method::DELETE, &format!("/channels/{new_id}"), None)
            .await,
        200
    );
    let (upstream, list) = f.went_upstream(&f.channels_path()).await;
    assert!(!upstream);
    assert_eq!(ids(&list), before);

    f.harness
        .discord
        .invalidate_discord_guild_cache(f.guild)
        .await
        .unwrap();
    assert_eq!(
        json(&f.get(&f.channels_path()).await),
        json(&list),
        "the edited list is Discord's"
    );
}

#[tokio::test]
async fn reorder_channels_invalidates_the_channel_list() {
    let f = Fixture::new().await;
    let list = f.get(&f.channels_path()).await;
    f.get(&f.roles_path()).await;
    let first = ids(&list)[1].clone();
    let status = f
        .write(
            Method::PATCH,
            &f.channels_path(),
            Some(json!([{"id": first, "position": 42}])),
        )
        .await;
    assert_eq!(status, 204);
    let (upstream, list) = f.went_upstream(&f.channels_path()).await;
    assert!(upstream);
    assert_eq!(json(&list)[1]["position"], 42);
    assert!(!f.went_upstream(&f.roles_path()).await.0);
}

#[tokio::test]
async fn permission_overwrites_invalidate_the_channels_guild() {
    let f = Fixture::new().await;
    let other_guild = f.others()[0].id;
    let other_channels = format!("/guilds/{other_guild}/channels");
    let list = f.get(&f.channels_path()).await;
    f.get(&other_channels).await;
    let channel = ids(&list)[1].clone();
    let role = f.info().roles[1];
    let path = format!("/channels/{channel}/permissions/{role}");

    let body = json!({"allow": "1024", "deny": "0", "type": 0});
    assert_eq!(f.write(Method::PUT, &path, Some(body)).await, 204);
    let (upstream, list) = f.went_upstream(&f.channels_path()).await;
    assert!(upstream);
    assert_eq!(json(&list)[1]["permission_overwrites"][0]["allow"], "1024");
    assert!(
        !f.went_upstream(&other_channels).await.0,
        "known channel: only its guild"
    );

    assert_eq!(f.write(Method::DELETE, &path, None).await, 204);
    let (upstream, list) = f.went_upstream(&f.channels_path()).await;
    assert!(upstream);
    assert_eq!(json(&list)[1]["permission_overwrites"], json!([]));
}

#[tokio::test]
async fn permission_overwrites_on_an_unseen_channel_invalidate_every_channel_list() {
    let f = Fixture::new().await;
    let guilds = f.others();
    let unseen_channel = guilds[1].channels[1];
    f.get(&f.channels_path()).await;
    f.get(&f.roles_path()).await;
    let path = format!(
        "/channels/{unseen_channel}/permissions/{}",
        guilds[1].roles[1]
    );
    let body = json!({"allow": "0", "deny": "2048", "type": 0});
    assert_eq!(f.write(Method::PUT, &path, Some(body)).await, 204);
    assert!(
        f.went_upstream(&f.channels_path()).await.0,
        "the fallback reaches every channel list"
    );
    assert!(
        !f.went_upstream(&f.roles_path()).await.0,
        "and nothing else"
    );
}

#[tokio::test]
async fn leaving_a_guild_invalidates_the_leavers_lists() {
    let f = Fixture::new().await;
    let user = f.harness.server.users()[0].clone();
    let auth = user.account.bearer_authorization();
    let left = *user.guilds.iter().find(|g| **g != f.guild).unwrap();
    f.harness.get("/users/@me/guilds", &auth).await;
    f.harness
        .get("/users/@me/guilds?with_counts=true", &auth)
        .await;
    let before = f.harness.upstream();
    let status = f
        .harness
        .send(
            Method::DELETE,
            &format!("/users/@me/guilds/{left}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status.status(), 204);
    let list = f.harness.get("/users/@me/guilds", &auth).await;
    let counted = f
        .harness
        .get("/users/@me/guilds?with_counts=true", &auth)
        .await;
    assert_eq!(
        f.harness.upstream(),
        before + 3,
        "both variants were refetched"
    );
    assert!(!ids(&list).contains(&left.to_string()));
    assert_eq!(ids(&list), ids(&counted));

    // The bot leaves: its guild list and what it cached about the guild go.
    f.get("/users/@me/guilds").await;
    f.get(&f.roles_path()).await;
    assert_eq!(
        f.write(
            Method::DELETE,
            &format!("/users/@me/guilds/{}", f.guild),
            None
        )
        .await,
        204
    );
    let (upstream, list) = f.went_upstream("/users/@me/guilds").await;
    assert!(upstream);
    assert!(!ids(&list).contains(&f.guild.to_string()));
    let (upstream, roles) = f.went_upstream(&f.roles_path()).await;
    assert!(upstream);
    assert_eq!(roles.status(), 403, "the bot is no longer a member");
}

/// Refused writes (4xx) change nothing; a 5xx does not say whether Discord applied the write, so what it
/// could change is fetched again.
#[tokio::test]
async fn a_refused_write_changes_nothing_and_a_5xx_write_invalidates_what_it_touches() {
    let f = Fixture::new().await;
    let member = f.member_path(f.some_member(0));
    f.get(&member).await;
    f.get(&f.roles_path()).await;
    let missing_role = format!("{}/{}", f.roles_path(), 1234567890123456789u64);
    assert_eq!(
        f.write(Method::PATCH, &missing_role, Some(json!({"name": "x"})))
            .await,
        404
    );
    assert_eq!(f.write(Method::DELETE, &missing_role, None).await, 404);
    f.harness
        .server
        .fail_next(1, http::StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        f.write(Method::PATCH, &member, Some(json!({"nick": "lost"})))
            .await,
        500
    );
    let (upstream, answer) = f.went_upstream(&member).await;
    assert!(upstream, "the member is read again after the 5xx");
    assert_ne!(json(&answer)["nick"], "lost");
    assert!(
        !f.went_upstream(&f.roles_path()).await.0,
        "the roles were neither touched nor invalidated"
    );
}
