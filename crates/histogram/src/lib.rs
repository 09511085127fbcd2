//! Power-of-two latency histograms (not yet implemented).
