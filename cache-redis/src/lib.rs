//! Shared Redis store for `cache-core`. Not implemented yet; the crate builds empty.
