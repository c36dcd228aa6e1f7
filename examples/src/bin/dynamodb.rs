//! A DynamoDB client behind the cache: item and query reads cached, consistent reads passed through,
//! writes updating or invalidating what they change.
//!
//! `cargo run --release -p examples --bin dynamodb` (add `-- --json` for the report as JSON)
//!
//! The table is simulated in process (5 ms per call), so this needs no network or credentials. The
//! scenario and the policy live in `examples::dynamodb`, where the tests run them too.

use cache_core::BoxError;
use examples::dynamodb::demo;

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
