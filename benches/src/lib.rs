//! Benchmarks of the cache layer and its stores.
//!
//! `cargo run --release -p benches --bin scenarios -- --backend memory|redis` measures each scenario
//! beside a baseline taken in the same run (the raw store operation) and prints one JSON object per line.
//!
//! `cargo bench -p benches` runs the criterion benches in `benches/benches/`, each beside its baseline in
//! the same criterion group. This library holds what they share: the workload ([`workload`]) and a
//! realistic value for the codec benches ([`discord`]).
//!
//! See `benches/README.md` for the figures and the machine they were taken on.

pub mod discord;
pub mod workload;
