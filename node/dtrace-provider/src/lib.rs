//! dtrace-provider-compatible USDT provider for Node.js on Linux (not yet implemented).
