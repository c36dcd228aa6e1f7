//! The cacheable form of a Discord response: status, the headers that matter, and the body.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_body_util::Full;
use serde::{Deserialize, Serialize};

/// A buffered HTTP response, as the cache stores it and replays it.
///
/// Only the headers that matter to a Discord client are kept, byte for byte: `content-type`,
/// `content-encoding` (the body is kept as received), `retry-after` and every `x-ratelimit-*` header.
/// Everything else, `set-cookie` above all, is dropped: a cached response is replayed to other callers.
///
/// The type is plain data (serde, no self-describing fields), so any codec of `cache-core`, bincode
/// included, can carry it to a shared store.
///
/// ```
/// use bytes::Bytes;
/// use cache_discord::CachedResponse;
///
/// let response = http::Response::builder()
///     .status(429)
///     .header("content-type", "application/json")
///     .header("x-ratelimit-global", "true")
///     .header("set-cookie", "__dcfduid=1")
///     .body(())
///     .unwrap();
/// let (parts, ()) = response.into_parts();
/// let cached = CachedResponse::from_parts(&parts, Bytes::from_static(br#"{"global":true}"#));
/// assert_eq!(cached.status(), 429);
/// assert_eq!(cached.header("x-ratelimit-global"), Some(&b"true"[..]));
/// assert_eq!(cached.header("set-cookie"), None);
///
/// let replayed = cached.into_response();
/// assert_eq!(replayed.status(), 429);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedResponse {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Bytes,
}

/// Whether a response header is kept (names are lowercase, as `http` stores them).
pub fn is_kept_header(name: &str) -> bool {
    matches!(name, "content-type" | "content-encoding" | "retry-after")
        || name.starts_with("x-ratelimit-")
}

impl CachedResponse {
    /// A response from its parts; `headers` are kept as given (names lowercased).
    pub fn new(status: u16, headers: Vec<(String, Vec<u8>)>, body: Bytes) -> Self {
        let headers = headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        Self {
            status,
            headers,
            body,
        }
    }

    /// A `200 OK` JSON response: what an entry updated from a write's answer looks like.
    pub fn json(body: Bytes) -> Self {
        Self::new(
            200,
            vec![("content-type".to_owned(), b"application/json".to_vec())],
            body,
        )
    }

    /// The response of `parts` and its buffered `body`, keeping the headers that matter.
    pub fn from_parts(parts: &http::response::Parts, body: Bytes) -> Self {
        Self::from_status_headers(parts.status, &parts.headers, body)
    }

    /// Like [`from_parts`](Self::from_parts), from a status and a header map.
    pub fn from_status_headers(status: StatusCode, headers: &HeaderMap, body: Bytes) -> Self {
        let headers = headers
            .iter()
            .filter(|(name, _)| is_kept_header(name.as_str()))
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect();
        Self {
            status: status.as_u16(),
            headers,
            body,
        }
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// True for a 2xx status: only those are cached.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_slice())
    }

    /// Every kept header, in the order received.
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }

    /// The body, as received.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The same response with another body (a cached list updated by a write).
    pub fn with_body(&self, body: Bytes) -> Self {
        Self {
            status: self.status,
            headers: self.headers.clone(),
            body,
        }
    }

    /// An `http` response replaying status, kept headers and body. A header that is no longer valid
    /// (only possible for hand-built values) is skipped.
    pub fn into_response(self) -> http::Response<Full<Bytes>> {
        let mut response = http::Response::new(Full::new(self.body));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(&value),
            ) {
                headers.append(name, value);
            }
        }
        response
    }
}

impl From<CachedResponse> for http::Response<Full<Bytes>> {
    fn from(response: CachedResponse) -> Self {
        response.into_response()
    }
}

impl fmt::Debug for CachedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, String)> = self
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), String::from_utf8_lossy(value).into_owned()))
            .collect();
        f.debug_struct("CachedResponse")
            .field("status", &self.status)
            .field("headers", &headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}
