#!/usr/bin/env bash
# Installs what the tests need (scripts/test-setup.sh), then checks formatting and lints and runs
# every test: unit tests, the seed stories through the core and the CLI, and the storage suite
# on SQLite and on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/test-setup.sh
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
