//! Process control for live targets (not yet implemented).
