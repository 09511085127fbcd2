#!/usr/bin/env bash
# demo.sh — sets up the machine (scripts/setup.sh), then runs
# `prodtrace latency` for 10 s on the bundled sqlite demo and prints one
# latency histogram per kind of asynchronous operation.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec ./target/release/prodtrace latency --duration 10s -- node examples/node/sqlite-demo.js
