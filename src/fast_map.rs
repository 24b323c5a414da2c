//! Hash maps for the server's own keys (ids it assigns, token hashes), which no client can
//! fill with chosen collisions: a fast hash instead of std's SipHash, whose hashing showed
//! in profiles of the poll path (BENCHMARKS.md, eighth measurement).

/// A hash map with a fast, per-map seeded hash.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// The set counterpart of [`FastMap`].
pub type FastSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;
