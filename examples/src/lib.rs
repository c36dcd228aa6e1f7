//! The library half of the example programs: services, policies and scenarios that the binaries run and
//! the tests assert on, so what a binary prints is what the tests check.
//!
//! - [`dynamodb`]: the official DynamoDB client (`aws-sdk-dynamodb`) behind the cache, against a local
//!   DynamoDB-compatible server (`cargo run --release -p examples --bin dynamodb`).
//! - [`llm`]: a key policy for a chat-completion client (`cargo run --release -p examples --bin llm`).

pub mod dynamodb;
pub mod llm;
