//! [`DynamoClient`]: the official SDK client as a tower service over [`DynamoRequest`], counting the
//! calls it makes and the capacity they consume (what the cache saves).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use aws_sdk_dynamodb::Client;
use cache_core::BoxError;
use tower::Service;

use super::{item_from_sdk, DynamoRequest, DynamoResponse, UnknownAttributeType};

/// A DynamoDB error, by the code DynamoDB gave it (`ConditionalCheckFailedException`,
/// `ProvisionedThroughputExceededException`, ...), or the SDK's description when the call never got an
/// answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DynamoDB {operation}: {code}: {message}")]
pub struct DynamoError {
    /// The operation, such as `PutItem`.
    pub operation: &'static str,
    /// DynamoDB's error code, or `Unanswered` (no answer: a timeout, a connection refused).
    pub code: String,
    /// What DynamoDB or the SDK said.
    pub message: String,
}

impl DynamoError {
    fn from_sdk<E>(operation: &'static str, error: E) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        Self {
            operation,
            code: error.code().unwrap_or("Unanswered").to_owned(),
            message: error
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| DisplayErrorContext(&error).to_string()),
        }
    }

    /// DynamoDB refused the call for lack of capacity: retry later, with back-off.
    pub fn is_throttling(&self) -> bool {
        matches!(
            self.code.as_str(),
            "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
        )
    }

    /// A write's condition did not hold: nothing was written.
    pub fn is_conditional_check_failed(&self) -> bool {
        self.code == "ConditionalCheckFailedException"
    }
}

impl From<(&'static str, UnknownAttributeType)> for DynamoError {
    fn from((operation, error): (&'static str, UnknownAttributeType)) -> Self {
        Self {
            operation,
            code: "UnknownAttributeType".to_owned(),
            message: error.to_string(),
        }
    }
}

/// What the client has cost so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Usage {
    /// Requests sent to DynamoDB, answered with an error or not (the SDK retries some: a throttled
    /// request may take several attempts).
    pub calls: u64,
    /// Read capacity units consumed (as DynamoDB reported them).
    pub read_units: f64,
    /// Write capacity units consumed.
    pub write_units: f64,
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    /// Thousandths of a unit, so they add up atomically.
    read_milli_units: AtomicU64,
    write_milli_units: AtomicU64,
}

impl Counters {
    fn record(&self, read: bool, consumed: Option<&ConsumedCapacity>) {
        let units = consumed.and_then(ConsumedCapacity::capacity_units);
        let milli = (units.unwrap_or(0.0) * 1000.0).round() as u64;
        let counter = if read {
            &self.read_milli_units
        } else {
            &self.write_milli_units
        };
        counter.fetch_add(milli, Ordering::Relaxed);
    }
}

/// `aws_sdk_dynamodb::Client` as a `Service<DynamoRequest>`: each request is sent with every field of
/// its input as given (and `ReturnConsumedCapacity: TOTAL` when it sets none, to count the units), and
/// the answer converted to [`DynamoResponse`].
///
/// Always ready; cheap to clone (clones share the SDK client and the counters).
#[derive(Debug, Clone)]
pub struct DynamoClient {
    client: Client,
    counters: Arc<Counters>,
}

impl DynamoClient {
    /// Wraps a configured SDK client.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            counters: Arc::default(),
        }
    }

    /// A client of the DynamoDB-compatible server at `endpoint` (`http://127.0.0.1:8000`), with static
    /// credentials and region `us-east-1`: configured in code, no profile or environment lookup.
    pub fn local(endpoint: &str) -> Self {
        let http = aws_smithy_http_client::Builder::new();
        let http = if endpoint.starts_with("https://") {
            http.tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https()
        } else {
            http.build_http()
        };
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("local", "local", None, None, "static"))
            .http_client(http)
            .build();
        Self::new(Client::from_conf(config))
    }

    /// The SDK client (to create tables, or for calls the cache should not see).
    pub fn sdk(&self) -> &Client {
        &self.client
    }

    /// Calls made and capacity consumed so far, by this client and its clones.
    pub fn usage(&self) -> Usage {
        let units = |counter: &AtomicU64| counter.load(Ordering::Relaxed) as f64 / 1000.0;
        Usage {
            calls: self.counters.calls.load(Ordering::Relaxed),
            read_units: units(&self.counters.read_milli_units),
            write_units: units(&self.counters.write_milli_units),
        }
    }

    async fn send(
        client: Client,
        counters: Arc<Counters>,
        request: DynamoRequest,
    ) -> Result<DynamoResponse, DynamoError> {
        // Every call sent counts, refused ones too: DynamoDB answered it.
        counters.calls.fetch_add(1, Ordering::Relaxed);
        let operation = request.operation();
        let total =
            |asked: Option<ReturnConsumedCapacity>| asked.or(Some(ReturnConsumedCapacity::Total));
        let converted = |error| DynamoError::from((operation, error));
        match request {
            DynamoRequest::GetItem(input) => {
                let output = client
                    .get_item()
                    .set_table_name(input.table_name)
                    .set_key(input.key)
                    .set_attributes_to_get(input.attributes_to_get)
                    .set_consistent_read(input.consistent_read)
                    .set_return_consumed_capacity(total(input.return_consumed_capacity))
                    .set_projection_expression(input.projection_expression)
                    .set_expression_attribute_names(input.expression_attribute_names)
                    .send()
                    .await
                    .map_err(|error| DynamoError::from_sdk(operation, error))?;
                counters.record(true, output.consumed_capacity());
                let item = output.item.as_ref().map(item_from_sdk).transpose();
                Ok(DynamoResponse::Item(item.map_err(converted)?))
            }
            DynamoRequest::Query(input) => {
                let output = client
                    .query()
                    .set_table_name(input.table_name)
                    .set_index_name(input.index_name)
                    .set_select(input.select)
                    .set_attributes_to_get(input.attributes_to_get)
                    .set_limit(input.limit)
                    .set_consistent_read(input.consistent_read)
                    .set_key_conditions(input.key_conditions)
                    .set_query_filter(input.query_filter)
                    .set_conditional_operator(input.conditional_operator)
                    .set_scan_index_forward(input.scan_index_forward)
                    .set_exclusive_start_key(input.exclusive_start_key)
                    .set_return_consumed_capacity(total(input.return_consumed_capacity))
                    .set_projection_expression(input.projection_expression)
                    .set_filter_expression(input.filter_expression)
                    .set_key_condition_expression(input.key_condition_expression)
                    .set_expression_attribute_names(input.expression_attribute_names)
                    .set_expression_attribute_values(input.expression_attribute_values)
                    .send()
                    .await
                    .map_err(|error| DynamoError::from_sdk(operation, error))?;
                counters.record(true, output.consumed_capacity());
                let items: Result<Vec<_>, _> = output.items().iter().map(item_from_sdk).collect();
                let last = output.last_evaluated_key.as_ref().map(item_from_sdk);
                Ok(DynamoResponse::Page {
                    items: items.map_err(converted)?,
                    count: output.count,
                    scanned_count: output.scanned_count,
                    last_evaluated_key: last.transpose().map_err(converted)?,
                })
            }
            DynamoRequest::PutItem(input) => {
                let output = client
                    .put_item()
                    .set_table_name(input.table_name)
                    .set_item(input.item)
                    .set_expected(input.expected)
                    .set_return_values(input.return_values)
                    .set_return_consumed_capacity(total(input.return_consumed_capacity))
                    .set_return_item_collection_metrics(input.return_item_collection_metrics)
                    .set_conditional_operator(input.conditional_operator)
                    .set_condition_expression(input.condition_expression)
                    .set_expression_attribute_names(input.expression_attribute_names)
                    .set_expression_attribute_values(input.expression_attribute_values)
                    .set_return_values_on_condition_check_failure(
                        input.return_values_on_condition_check_failure,
                    )
                    .send()
                    .await
                    .map_err(|error| DynamoError::from_sdk(operation, error))?;
                counters.record(false, output.consumed_capacity());
                let attributes = returned(output.attributes.as_ref());
                Ok(DynamoResponse::Written(
                    attributes.transpose().map_err(converted)?,
                ))
            }
            DynamoRequest::UpdateItem(input) => {
                let output = client
                    .update_item()
                    .set_table_name(input.table_name)
                    .set_key(input.key)
                    .set_attribute_updates(input.attribute_updates)
                    .set_expected(input.expected)
                    .set_conditional_operator(input.conditional_operator)
                    .set_return_values(input.return_values)
                    .set_return_consumed_capacity(total(input.return_consumed_capacity))
                    .set_return_item_collection_metrics(input.return_item_collection_metrics)
                    .set_update_expression(input.update_expression)
                    .set_condition_expression(input.condition_expression)
                    .set_expression_attribute_names(input.expression_attribute_names)
                    .set_expression_attribute_values(input.expression_attribute_values)
                    .set_return_values_on_condition_check_failure(
                        input.return_values_on_condition_check_failure,
                    )
                    .send()
                    .await
                    .map_err(|error| DynamoError::from_sdk(operation, error))?;
                counters.record(false, output.consumed_capacity());
                let attributes = returned(output.attributes.as_ref());
                Ok(DynamoResponse::Written(
                    attributes.transpose().map_err(converted)?,
                ))
            }
            DynamoRequest::DeleteItem(input) => {
                let output = client
                    .delete_item()
                    .set_table_name(input.table_name)
                    .set_key(input.key)
                    .set_expected(input.expected)
                    .set_conditional_operator(input.conditional_operator)
                    .set_return_values(input.return_values)
                    .set_return_consumed_capacity(total(input.return_consumed_capacity))
                    .set_return_item_collection_metrics(input.return_item_collection_metrics)
                    .set_condition_expression(input.condition_expression)
                    .set_expression_attribute_names(input.expression_attribute_names)
                    .set_expression_attribute_values(input.expression_attribute_values)
                    .set_return_values_on_condition_check_failure(
                        input.return_values_on_condition_check_failure,
                    )
                    .send()
                    .await
                    .map_err(|error| DynamoError::from_sdk(operation, error))?;
                counters.record(false, output.consumed_capacity());
                let attributes = returned(output.attributes.as_ref());
                Ok(DynamoResponse::Written(
                    attributes.transpose().map_err(converted)?,
                ))
            }
            DynamoRequest::TransactWriteItems(input) => {
                let output = client
                    .transact_write_items()
                    .set_transact_items(input.transact_items)
                    .set_return_consumed_capacity(total(input.return_consumed_capacity))
                    .set_return_item_collection_metrics(input.return_item_collection_metrics)
                    .set_client_request_token(input.client_request_token)
                    .send()
                    .await
                    .map_err(|error| DynamoError::from_sdk(operation, error))?;
                let consumed = output.consumed_capacity();
                let units: f64 = consumed.iter().filter_map(|c| c.capacity_units).sum();
                let milli = (units * 1000.0).round() as u64;
                counters
                    .write_milli_units
                    .fetch_add(milli, Ordering::Relaxed);
                Ok(DynamoResponse::Written(None))
            }
        }
    }
}

/// A write's returned attributes: none when it returned none (some servers send an empty map).
fn returned(
    attributes: Option<&std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
) -> Option<Result<super::Item, UnknownAttributeType>> {
    attributes
        .filter(|attributes| !attributes.is_empty())
        .map(item_from_sdk)
}

impl Service<DynamoRequest> for DynamoClient {
    type Response = DynamoResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<DynamoResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: DynamoRequest) -> Self::Future {
        let (client, counters) = (self.client.clone(), Arc::clone(&self.counters));
        Box::pin(async move {
            Self::send(client, counters, request)
                .await
                .map_err(BoxError::from)
        })
    }
}
