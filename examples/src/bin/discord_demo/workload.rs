//! The workload: a dashboard morning compressed into one run. Users arrive over a few seconds, each
//! loads their guild list, then opens one of their guilds, picked with a Zipf skew towards the popular
//! ones; some users are far more active than others, announcements send bursts of users at once, admins
//! make edits and the bot polls its own guild list.

use std::time::Duration;

use cache_discord::Snowflake;
use discord_test_server::{FixtureGuild, FixtureUser};

use crate::random::{SplitMix, Zipf};

/// Length of one run.
pub(crate) const RUN: Duration = Duration::from_secs(8);
/// The workload is released in ticks.
pub(crate) const TICK: Duration = Duration::from_millis(100);
/// Dashboard page loads per second once every user has arrived.
const PEAK_LOADS_PER_SECOND: f64 = 28.0;
/// Users arrive over this long.
const RAMP_UP: Duration = Duration::from_secs(3);
/// Announcements: at these times, this many extra users open the dashboard at once.
const BURSTS: [(Duration, usize); 3] = [
    (Duration::from_millis(2_500), 12),
    (Duration::from_millis(4_500), 16),
    (Duration::from_millis(6_500), 16),
];
/// One admin edit per this many page loads.
const LOADS_PER_EDIT: usize = 12;
/// The bot polls its own guild list every this many ticks.
const TICKS_PER_BOT_POLL: usize = 5;

/// One thing a user, an admin or the bot does.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// A user opens the dashboard: their guild list, then one guild's channels, roles and their member.
    PageLoad { user: usize, guild: Snowflake },
    /// An admin edit, sent with the bot token.
    Edit(Edit),
    /// The bot reads its own guild list.
    BotGuilds,
}

#[derive(Debug, Clone)]
pub(crate) enum Edit {
    Nickname {
        guild: Snowflake,
        user: Snowflake,
        nick: String,
    },
    GiveRole {
        guild: Snowflake,
        user: Snowflake,
        role: Snowflake,
    },
    RenameRole {
        guild: Snowflake,
        role: Snowflake,
        name: String,
    },
    CreateChannel {
        guild: Snowflake,
        name: String,
    },
}

/// The whole schedule: the actions released at each tick.
pub(crate) struct Plan {
    pub(crate) users: Vec<FixtureUser>,
    pub(crate) ticks: Vec<Vec<Action>>,
}

impl Plan {
    pub(crate) fn generate(users: &[FixtureUser], guilds: &[FixtureGuild], seed: u64) -> Self {
        let mut rng = SplitMix::new(seed);
        // Popularity ranks: a few guilds and a few users account for most of the traffic.
        let mut guild_rank: Vec<Snowflake> = guilds.iter().map(|g| g.id).collect();
        rng.shuffle(&mut guild_rank);
        let popularity = |guild: Snowflake| {
            let rank = guild_rank.iter().position(|g| *g == guild).unwrap_or(0);
            1.0 / ((rank + 1) as f64).powf(1.1)
        };
        let mut user_order: Vec<usize> = (0..users.len()).collect();
        rng.shuffle(&mut user_order);
        let activity = Zipf::new(users.len(), 1.0);

        let ticks = (RUN.as_millis() / TICK.as_millis()) as usize;
        let mut plan = Vec::with_capacity(ticks);
        let mut owed = 0.0;
        let mut loads = 0usize;
        // Counters rather than `%`: the crate's minimum Rust has no `is_multiple_of`.
        let mut next_edit = LOADS_PER_EDIT;
        let mut next_poll = 0;
        for tick in 0..ticks {
            let at = TICK * tick as u32;
            let ramp = (at.as_secs_f64() / RAMP_UP.as_secs_f64()).min(1.0);
            owed += PEAK_LOADS_PER_SECOND * TICK.as_secs_f64() * ramp.max(0.1);
            let mut count = owed.floor() as usize;
            owed -= count as f64;
            count += BURSTS
                .iter()
                .filter(|(when, _)| *when == at)
                .map(|(_, extra)| extra)
                .sum::<usize>();
            let mut actions = Vec::new();
            for _ in 0..count {
                let user = user_order[activity.sample(&mut rng)];
                let own: Vec<(Snowflake, f64)> = users[user]
                    .guilds
                    .iter()
                    .map(|g| (*g, popularity(*g)))
                    .collect();
                let Some(guild) = rng.weighted(&own) else {
                    continue;
                };
                actions.push(Action::PageLoad { user, guild });
                loads += 1;
                if loads == next_edit {
                    next_edit += LOADS_PER_EDIT;
                    let fixture = guilds
                        .iter()
                        .find(|g| g.id == guild)
                        .expect("a generated guild");
                    actions.push(Action::Edit(edit(
                        &mut rng,
                        fixture,
                        users[user].account.id,
                        loads,
                    )));
                }
            }
            if tick == next_poll {
                next_poll += TICKS_PER_BOT_POLL;
                actions.push(Action::BotGuilds);
            }
            plan.push(actions);
        }
        Self {
            users: users.to_vec(),
            ticks: plan,
        }
    }

    pub(crate) fn count(&self, which: impl Fn(&Action) -> bool) -> usize {
        self.ticks.iter().flatten().filter(|a| which(a)).count()
    }

    /// HTTP requests the plan sends.
    pub(crate) fn requests(&self) -> usize {
        self.ticks
            .iter()
            .flatten()
            .map(|action| match action {
                Action::PageLoad { .. } => 4,
                Action::Edit(_) | Action::BotGuilds => 1,
            })
            .sum()
    }
}

fn edit(rng: &mut SplitMix, guild: &FixtureGuild, user: Snowflake, serial: usize) -> Edit {
    let role = guild.roles[1 + rng.below(guild.roles.len() - 1)];
    match rng.below(4) {
        0 => Edit::Nickname {
            guild: guild.id,
            user,
            nick: format!("raider #{serial}"),
        },
        1 => Edit::GiveRole {
            guild: guild.id,
            user,
            role,
        },
        2 => Edit::RenameRole {
            guild: guild.id,
            role,
            name: format!("Crew {serial}"),
        },
        _ => Edit::CreateChannel {
            guild: guild.id,
            name: format!("event-{serial}"),
        },
    }
}
