//! What every criterion bench of this crate shares: its settings and its `main`.

use std::time::Duration;

use criterion::Criterion;

/// Runs `benches` with one second of warm-up and three of measurement (the command line may override
/// both), then prints criterion's summary.
pub(crate) fn run(benches: impl FnOnce(&mut Criterion)) {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}
