//! Benchmarks of mesh-metrics against its peers; see `benches/compare.rs`
//! and BENCHMARKS.md. Nothing to link: the library is empty.
