//! Running the plan against a server, tick by tick on the wall clock, and what callers saw.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use cache_discord::Snowflake;
use discord_test_server::DiscordServer;
use http::Method;
use http_body_util::Full;
use serde_json::json;
use tower::ServiceExt;

use crate::outage;
use crate::workload::{Action, Edit, Plan, TICK};
use crate::DiscordClient;

/// What callers saw in one run.
#[derive(Debug, Default)]
pub(crate) struct RunResult {
    pub(crate) samples: Vec<Sample>,
}

/// One request: how long it took, its status (0 when it failed without one), and whether its action
/// was released during the outage.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    millis: f64,
    status: u16,
    during_outage: bool,
}

impl Sample {
    /// A rate limit, a server error or no answer at all: what an outage looks like to a caller.
    fn failed(&self) -> bool {
        self.status == 0 || self.status == 429 || self.status >= 500
    }
}

impl RunResult {
    pub(crate) fn rate_limited(&self) -> usize {
        self.samples.iter().filter(|s| s.status == 429).count()
    }

    /// 429s callers received for requests released outside the outage: what pacing must prevent.
    pub(crate) fn rate_limited_outside_outage(&self) -> usize {
        let refused = |s: &&Sample| !s.during_outage && s.status == 429;
        self.samples.iter().filter(refused).count()
    }

    /// Requests released during the outage that failed.
    pub(crate) fn failed_during_outage(&self) -> usize {
        let failed = |s: &&Sample| s.during_outage && s.failed();
        self.samples.iter().filter(failed).count()
    }

    /// Requests released during the outage.
    pub(crate) fn during_outage(&self) -> usize {
        self.samples.iter().filter(|s| s.during_outage).count()
    }

    pub(crate) fn percentile(&self, quantile: f64) -> f64 {
        self.percentile_of(quantile, |_| true)
    }

    /// The percentile of the requests released outside the outage.
    pub(crate) fn percentile_outside_outage(&self, quantile: f64) -> f64 {
        self.percentile_of(quantile, |s| !s.during_outage)
    }

    fn percentile_of(&self, quantile: f64, included: impl Fn(&Sample) -> bool) -> f64 {
        let mut millis: Vec<f64> = self
            .samples
            .iter()
            .filter(|s| included(s))
            .map(|s| s.millis)
            .collect();
        if millis.is_empty() {
            return 0.0;
        }
        millis.sort_by(f64::total_cmp);
        let index = ((millis.len() - 1) as f64 * quantile).round() as usize;
        millis[index]
    }
}

/// Releases the plan tick by tick on the wall clock, switching the server's outage on and off on
/// schedule, and waits for every request to finish.
pub(crate) async fn run(
    label: &str,
    client: DiscordClient,
    server: &DiscordServer,
    plan: &Plan,
) -> RunResult {
    let context = Arc::new(Context {
        base: server.url(""),
        bot: server.bot().bot_authorization(),
        users: plan
            .users
            .iter()
            .map(|u| (u.account.bearer_authorization(), u.account.id))
            .collect(),
    });
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut result = RunResult::default();
    for (tick, actions) in plan.ticks.iter().enumerate() {
        let at = TICK * tick as u32;
        tokio::time::sleep_until(start + at).await;
        let outage = outage::at(at);
        if outage != server.outage() {
            match outage {
                Some(outage) => server.start_outage(outage),
                None => server.end_outage(),
            }
            let what = outage.map_or("over".to_owned(), |o| {
                format!("Discord answers {}", o.status())
            });
            eprintln!("[{label:>13}] {:>4.1} s  outage: {what}", at.as_secs_f64());
        }
        for action in actions {
            let (client, context, action) = (client.clone(), Arc::clone(&context), action.clone());
            tasks.spawn(async move {
                let mut samples = perform(&client, &context, action).await;
                for sample in &mut samples {
                    sample.during_outage = outage.is_some();
                }
                samples
            });
        }
        while let Some(done) = tasks.try_join_next() {
            result
                .samples
                .extend(done.expect("a workload task panicked"));
        }
        if tick % 10 == 9 {
            let stats = server.stats();
            eprintln!(
                "[{label:>13}] {:>4.1} s  answered {:>4}  upstream {:>4}  429s {:>3}  failed in outage {:>3}",
                start.elapsed().as_secs_f64(),
                result.samples.len(),
                stats.requests,
                result.rate_limited(),
                result.failed_during_outage(),
            );
        }
    }
    while let Some(done) = tasks.join_next().await {
        result
            .samples
            .extend(done.expect("a workload task panicked"));
    }
    result
}

/// What every request of a run needs: where the server is and the tokens of its accounts.
struct Context {
    base: String,
    bot: String,
    /// Each user's `Authorization` value and id, in the plan's order.
    users: Vec<(String, Snowflake)>,
}

async fn perform(client: &DiscordClient, context: &Context, action: Action) -> Vec<Sample> {
    let get =
        |path: String, auth: &str| send(client, context, Method::GET, path, auth.to_owned(), None);
    match action {
        Action::PageLoad { user, guild } => {
            let (user_auth, user_id) = &context.users[user];
            let list = get("/users/@me/guilds".to_owned(), user_auth).await;
            let (channels, roles, member) = tokio::join!(
                get(format!("/guilds/{guild}/channels"), &context.bot),
                get(format!("/guilds/{guild}/roles"), &context.bot),
                get(format!("/guilds/{guild}/members/{user_id}"), &context.bot),
            );
            vec![list, channels, roles, member]
        }
        Action::BotGuilds => vec![get("/users/@me/guilds".to_owned(), &context.bot).await],
        Action::Edit(edit) => {
            let bot = context.bot.clone();
            let (method, path, body) = match edit {
                Edit::Nickname { guild, user, nick } => (
                    Method::PATCH,
                    format!("/guilds/{guild}/members/{user}"),
                    Some(json!({"nick": nick})),
                ),
                Edit::GiveRole { guild, user, role } => (
                    Method::PUT,
                    format!("/guilds/{guild}/members/{user}/roles/{role}"),
                    None,
                ),
                Edit::RenameRole { guild, role, name } => (
                    Method::PATCH,
                    format!("/guilds/{guild}/roles/{role}"),
                    Some(json!({"name": name})),
                ),
                Edit::CreateChannel { guild, name } => (
                    Method::POST,
                    format!("/guilds/{guild}/channels"),
                    Some(json!({"name": name, "type": 0})),
                ),
            };
            vec![send(client, context, method, path, bot, body).await]
        }
    }
}

async fn send(
    client: &DiscordClient,
    context: &Context,
    method: Method,
    path: String,
    authorization: String,
    body: Option<serde_json::Value>,
) -> Sample {
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let request = http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", context.base))
        .header("authorization", authorization)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            "DiscordBot (https://github.com/tower-cache/tower-cache, 0.1)",
        )
        .body(Full::new(body))
        .expect("a valid request");
    let started = Instant::now();
    let status = match client.clone().oneshot(request).await {
        Ok(response) => response.status(),
        Err(error) => {
            eprintln!("request failed: {error}");
            0
        }
    };
    Sample {
        millis: started.elapsed().as_secs_f64() * 1000.0,
        status,
        during_outage: false,
    }
}
