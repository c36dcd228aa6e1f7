//! What is relayed, and where: the upstream is fixed, only `/api/` paths go, and nothing in a request
//! (an absolute URI, a `Host` header, an encoded or dotted path) can send it anywhere else.

use http::header::{
    HeaderMap, HeaderName, CONNECTION, HOST, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::Uri;

/// Why a request is answered by the proxy instead of relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotRelayed {
    /// Not under `/api/`: the proxy relays Discord's API only.
    NotApi,
    /// A path a server could read as another one: `.` or `..` segments, encoded slashes, dots or
    /// backslashes.
    AmbiguousPath,
}

/// The upstream URI for `request`'s path and query: the request's scheme and authority (absolute-form
/// URIs) and its `Host` never matter.
pub(crate) fn upstream_uri(upstream: &Uri, request: &Uri) -> Result<Uri, NotRelayed> {
    let path = request.path();
    if !(path == "/api" || path.starts_with("/api/")) {
        return Err(NotRelayed::NotApi);
    }
    if is_ambiguous(path) {
        return Err(NotRelayed::AmbiguousPath);
    }
    let path_and_query = request.path_and_query().map_or(path, |p| p.as_str());
    let scheme = upstream.scheme_str().unwrap_or("https");
    let authority = upstream.authority().map_or("", |a| a.as_str());
    format!("{scheme}://{authority}{path_and_query}")
        .parse()
        .map_err(|_| NotRelayed::AmbiguousPath)
}

fn is_ambiguous(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    path.split('/')
        .any(|segment| segment == "." || segment == "..")
        || path.contains('\\')
        || ["%2e", "%2f", "%5c", "%00"]
            .iter()
            .any(|encoded| lower.contains(encoded))
}

/// Removes the headers that belong to one connection (RFC 9110 section 7.6.1): the ones `Connection`
/// names, and the standard hop-by-hop ones. `Host` goes too on requests: the client sets the upstream's.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, request: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    for name in [
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
    ] {
        headers.remove(name);
    }
    if request {
        headers.remove(HOST);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(request: &str) -> Result<String, NotRelayed> {
        let upstream: Uri = "https://discord.com".parse().unwrap();
        upstream_uri(&upstream, &request.parse().unwrap()).map(|uri| uri.to_string())
    }

    #[test]
    fn only_api_paths_go_and_only_upstream() {
        assert_eq!(
            relay("/api/v10/users/@me?x=1").unwrap(),
            "https://discord.com/api/v10/users/@me?x=1"
        );
        assert_eq!(
            relay("http://evil.example/api/v10/gateway").unwrap(),
            "https://discord.com/api/v10/gateway"
        );
        assert_eq!(relay("/metrics"), Err(NotRelayed::NotApi));
        assert_eq!(relay("/apix/v10"), Err(NotRelayed::NotApi));
        for sneaky in [
            "/api/../metrics",
            "/api/v10/%2e%2e/admin",
            "/api/v10/guilds%2F1",
            "/api/v10/./users",
            "/api/v10/x%5c..",
        ] {
            assert_eq!(relay(sneaky), Err(NotRelayed::AmbiguousPath), "{sneaky}");
        }
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("host", "evil.example"),
            ("x-audit-log-reason", "cleanup"),
            ("user-agent", "DiscordBot (x, 1)"),
        ] {
            headers.insert(HeaderName::from_static(name), value.parse().unwrap());
        }
        strip_hop_by_hop(&mut headers, true);
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-audit-log-reason", "user-agent"]);
    }
}
