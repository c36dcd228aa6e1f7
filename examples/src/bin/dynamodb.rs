//! The official DynamoDB client (`aws-sdk-dynamodb`) behind the cache: item and query reads cached,
//! consistent reads passed through, writes updating or invalidating what they change.
//!
//! `cargo run --release -p examples --bin dynamodb` (add `-- --json` for the report as JSON)
//!
//! It starts a DynamoDB-compatible server on a free local port (moto's server mode:
//! `pip install 'moto[server]'`), so it needs no AWS account and no network; `--endpoint URL` uses
//! another server instead (DynamoDB Local, say). The scenario and the policy live in
//! `examples::dynamodb`, where the tests run them too.

use cache_core::BoxError;
use examples::dynamodb::{demo, LocalDynamo};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let given = args
        .iter()
        .position(|arg| arg == "--endpoint")
        .and_then(|at| args.get(at + 1).cloned());
    let (endpoint, _server) = match given {
        Some(endpoint) => (endpoint, None),
        None => {
            let server = LocalDynamo::start()?;
            (server.endpoint(), Some(server))
        }
    };
    let report = demo::run_demo(&endpoint).await?;
    if args.iter().any(|arg| arg == "--json") {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}
