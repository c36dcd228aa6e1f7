/// Decides which requests are cacheable reads, and under which key.
///
/// The key must capture everything that changes the answer, including who asks when answers differ by
/// credential. Returning `None` means "not a cacheable read": the request goes straight through (or to
/// the write hook).
///
/// Implemented for closures:
///
/// ```
/// use cache_core::KeyExtractor;
///
/// let by_path = |path: &String| path.starts_with("/users/").then(|| format!("user:{path}"));
/// assert_eq!(by_path.key(&"/users/1".to_owned()).as_deref(), Some("user:/users/1"));
/// assert_eq!(by_path.key(&"/health".to_owned()), None);
/// ```
pub trait KeyExtractor<Req>: Send + Sync + 'static {
    /// The key of `req`, or `None` when it is not a cacheable read.
    fn key(&self, req: &Req) -> Option<String>;
}

impl<Req, F> KeyExtractor<Req> for F
where
    F: Fn(&Req) -> Option<String> + Send + Sync + 'static,
{
    fn key(&self, req: &Req) -> Option<String> {
        self(req)
    }
}
