//! Veil's blind selective forwarding unit.
pub mod forward;
