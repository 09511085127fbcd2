#!/usr/bin/env bash
# test.sh — the whole test suite: sets up the machine (scripts/setup.sh),
# then runs every Rust test of the workspace (unit tests and the end-to-end
# tests that trace real node, sqlite3 and bunyan processes; they need root)
# and the Node.js provider's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo test --release --workspace --no-fail-fast
