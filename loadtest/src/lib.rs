//! Veil's load tester as a library: the `loadtest` binary is a thin CLI over
//! it, and the tests drive it directly.
//!
//! * [`scenario`]: what a run does (flags or a JSON file), and shards.
//! * [`target`]: an embedded server or a deployment's URLs; tokens; the
//!   SFU's own figures.
//! * [`run`]: the participants, the sampling, the report.
//! * [`report`]: the JSON report, merging shards, thresholds, the table.
//! * [`histogram`]: mergeable latency histograms.
//! * [`plot`]: the SVG plot.
//! * [`drill`]: a node drain rehearsed on loopback (real processes).

pub mod drill;
pub mod histogram;
pub mod plot;
pub mod report;
pub mod run;
pub mod scenario;
pub mod target;
