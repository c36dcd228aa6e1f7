//! A chat-completion client behind the cache: one call per question, however many ask at once.
//!
//! `cargo run --release -p examples --bin llm` (add `-- --json` for the report as JSON)
//!
//! The model is simulated in process (30 to 50 ms per call), so this needs no network or API key. It
//! takes about 3 s: one step waits out a short TTL hint. The scenario and the policy live in
//! `examples::llm`, where the tests run them too.

use cache_core::BoxError;
use examples::llm::demo;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let report = demo::run_demo().await?;
    if std::env::args().any(|arg| arg == "--json") {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}
