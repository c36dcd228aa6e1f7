//! Discord REST API policy for `cache-core`: key, tag and TTL rules, the write flow and invalidation helpers. Not implemented yet; the crate builds empty.
