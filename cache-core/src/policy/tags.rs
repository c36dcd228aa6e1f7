/// Names the tags of a response about to be stored; invalidating any of them removes the entry.
///
/// It receives the entry's key (which holds everything the request asked for) and the response. For tags
/// that need more of the request, implement [`CachePolicy`](crate::CachePolicy) and keep that part in its
/// `Read` context.
///
/// ```
/// use cache_core::TagExtractor;
///
/// let tags = |key: &str, _resp: &u32| vec![format!("guild:{}", key.rsplit(':').next().unwrap())];
/// assert_eq!(tags.tags("roles:42", &0), ["guild:42"]);
/// ```
pub trait TagExtractor<Resp>: Send + Sync + 'static {
    /// The tags of the entry `key` about to hold `resp`.
    fn tags(&self, key: &str, resp: &Resp) -> Vec<String>;
}

impl<Resp, F> TagExtractor<Resp> for F
where
    F: Fn(&str, &Resp) -> Vec<String> + Send + Sync + 'static,
{
    fn tags(&self, key: &str, resp: &Resp) -> Vec<String> {
        self(key, resp)
    }
}

/// No tags: entries are removed by TTL, by key or by `clear` only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTags;

impl<Resp> TagExtractor<Resp> for NoTags {
    fn tags(&self, _key: &str, _resp: &Resp) -> Vec<String> {
        Vec::new()
    }
}
