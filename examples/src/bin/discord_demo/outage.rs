//! The outage both runs go through: for two seconds in the middle of the run, the local Discord answers
//! every request with a failure, first rate limited (429), then unavailable (503).

use std::time::Duration;

use discord_test_server::Outage;
use http::StatusCode;

/// The phases of the outage: from when, until when (into the run), and how Discord answers.
const PHASES: [(Duration, Duration, Outage); 2] = [
    (
        Duration::from_millis(3_000),
        Duration::from_millis(4_000),
        Outage::RateLimited {
            global: true,
            retry_after: Duration::from_secs(1),
        },
    ),
    (
        Duration::from_millis(4_000),
        Duration::from_millis(5_000),
        Outage::ServerError(StatusCode::SERVICE_UNAVAILABLE),
    ),
];

/// The outage in progress `at` this long into the run, if any.
pub(crate) fn at(at: Duration) -> Option<Outage> {
    PHASES
        .iter()
        .find(|(from, until, _)| (*from..*until).contains(&at))
        .map(|(_, _, outage)| *outage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outage_is_429_then_503_from_3_to_5_seconds() {
        let ms = Duration::from_millis;
        let statuses: Vec<Option<u16>> = [2_900, 3_000, 3_900, 4_000, 4_900, 5_000]
            .into_iter()
            .map(|t| at(ms(t)).map(|o| o.status().as_u16()))
            .collect();
        assert_eq!(
            statuses,
            [None, Some(429), Some(429), Some(503), Some(503), None]
        );
    }
}
