//! Benchmarks of the cache layer and its stores. None yet.
