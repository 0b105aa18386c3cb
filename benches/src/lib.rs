//! Criterion benchmarks of Veil's hot paths live in `benches/`; this crate has
//! no library code of its own. Run them with `cargo bench -p benches`; CI runs
//! each once in test mode (`cargo test --all-targets`) so they keep working.
