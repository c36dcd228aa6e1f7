//! [`DiscordBody`]: the body of every answer of [`DiscordCacheService`](crate::DiscordCacheService) and
//! of every request [`DiscordRateLimit`](crate::DiscordRateLimit) sends.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use cache_core::BoxError;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};

/// A body known in full (a cached or buffered answer, a small request body kept for a retry), or
/// another body streamed untouched (answers the cache does not handle, large uploads).
pub struct DiscordBody {
    kind: Kind,
}

enum Kind {
    Full(Full<Bytes>),
    Streamed(UnsyncBoxBody<Bytes, BoxError>),
}

impl DiscordBody {
    /// A body of `bytes`, known in full.
    pub fn full(bytes: Bytes) -> Self {
        Self {
            kind: Kind::Full(Full::new(bytes)),
        }
    }

    /// The upstream's body, passed through frame by frame.
    pub fn streamed<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self {
            kind: Kind::Streamed(body.map_err(Into::into).boxed_unsync()),
        }
    }
}

impl Body for DiscordBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        // Both bodies are `Unpin`, so the enum needs no pin projection.
        match &mut self.get_mut().kind {
            Kind::Full(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|never| match never {}),
            Kind::Streamed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(body) => body.is_end_stream(),
            Kind::Streamed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(body) => body.size_hint(),
            Kind::Streamed(body) => body.size_hint(),
        }
    }
}

impl std::fmt::Debug for DiscordBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Full(_) => "Full",
            Kind::Streamed(_) => "Streamed",
        };
        f.debug_tuple("DiscordBody").field(&kind).finish()
    }
}
