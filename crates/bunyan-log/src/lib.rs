//! Bunyan-format logger with USDT probes (not yet implemented).
