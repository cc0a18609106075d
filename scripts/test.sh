#!/usr/bin/env bash
# The project's test command (README.md "Run the tests"); .ci/run calls exactly this.
# Installs what the tests need on a fresh machine, then: fmt, clippy, every test tier.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

if ! cargo clippy --version >/dev/null 2>&1 || ! cargo fmt --version >/dev/null 2>&1; then
    rustup component add clippy rustfmt
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
