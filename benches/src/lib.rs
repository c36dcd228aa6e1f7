//! Benchmarks of the cache layer and its stores.
//!
//! `cargo run --release -p benches --bin scenarios -- --backend memory|redis` measures each scenario
//! beside a baseline taken in the same run (the raw store operation) and prints one JSON object per line.
//! See `benches/README.md` for the figures and the machine they were taken on.
