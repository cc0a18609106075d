#!/usr/bin/env bash
# The project's test command (README.md "Run the tests"); .ci/run calls exactly this.
# Installs what the tests need on a fresh machine, then: fmt, clippy, every test tier.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

stage() { echo "==> $*"; }

# A skipped test reads "ok" in cargo's output: each appends its reason to this file
# (tests/common/skip.rs), cleared here and printed when the script ends (pass or fail).
export HVCERT_SKIP_LOG="$PWD/target/hvcert-skips.txt"
mkdir -p target
rm -f "$HVCERT_SKIP_LOG"
print_skips() {
    if [ -s "$HVCERT_SKIP_LOG" ]; then
        stage "skipped: $(sort -u "$HVCERT_SKIP_LOG" | wc -l) test(s) reported ok without running"
        sort -u "$HVCERT_SKIP_LOG"
    else
        stage "skipped: none"
    fi
}
trap print_skips EXIT

stage "test tools: rustup components, chromium, junitparser, ansible-core, a test kernel"

if ! cargo clippy --version >/dev/null 2>&1 || ! cargo fmt --version >/dev/null 2>&1; then
    rustup component add clippy rustfmt
fi

# Test tools from the package registries (skipped when already there):
# Debian's chromium renders the HTML report; Python's junitparser reads the JUnit XML;
# Python's ansible-core runs the fleet collection playbook.
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "note: /usr/bin/chromium absent and not root: the HTML browser test will skip" >&2
    fi
fi
if ! python3 -c 'import junitparser' 2>/dev/null; then
    # Quiet, and no "running pip as root" warning (an environment variable: pip before
    # 22.1 ignores it, where an unknown --root-user-action would fail the install).
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q junitparser || echo "note: junitparser not installed: the JUnit consumer test will skip" >&2
fi
# ansible-core runs deploy/ansible/collect.yml in tests/e2e/ansible.rs.
if ! command -v ansible-playbook >/dev/null 2>&1; then
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q ansible-core || echo "note: ansible-core not installed: the Ansible collection test will skip" >&2
fi

# A real distribution kernel for the bzImage loader test (hypervisor/tests/vm.rs): Debian's
# cloud kernel, unpacked under target/ (nothing is installed). Without it that test skips.
if [ -z "${HVCERT_TEST_KERNEL:-}" ]; then
    kdir=target/test-kernel
    if ! ls "$kdir"/boot/vmlinuz-* >/dev/null 2>&1; then
        mkdir -p "$kdir"
        pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends:/ {print $2; exit}')
        if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
            apt-get update -qq
            pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends:/ {print $2; exit}')
        fi
        if [ -n "$pkg" ] && (cd "$kdir" && apt-get download -qq "$pkg" >/dev/null 2>&1); then
            dpkg-deb --fsys-tarfile "$kdir"/*.deb | tar -x -C "$kdir" --wildcards './boot/vmlinuz-*'
            rm -f "$kdir"/*.deb
        else
            echo "note: could not fetch Debian's cloud kernel: the real-bzImage test will skip" >&2
        fi
    fi
    k=$(ls "$kdir"/boot/vmlinuz-* 2>/dev/null | head -n 1 || true)
    if [ -n "$k" ]; then
        HVCERT_TEST_KERNEL="$PWD/$k"
        export HVCERT_TEST_KERNEL
    fi
fi

stage "fmt"
cargo fmt --all --check
stage "clippy"
cargo clippy --workspace --all-targets -- -D warnings
stage "doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
# The guest kernel is its own cargo workspace (no_std): check it too.
stage "guest kernel: fmt, clippy"
(cd certify/guest && cargo fmt --check && cargo clippy --release -- -D warnings)
stage "test"
cargo test --workspace

# ---- fuzzing (issue 16) ---------------------------------------------------------------
# Every cargo-fuzz target (fuzz/, its own workspace) from its committed seed corpus for
# HVCERT_FUZZ_SECONDS each (default 10; 0 skips this section). cargo-fuzz needs the nightly
# toolchain; both are installed here when missing. The first build takes a few minutes.
fuzz_secs=${HVCERT_FUZZ_SECONDS:-10}
if [ "$fuzz_secs" != 0 ]; then
    stage "fuzz: every cargo-fuzz target for ${fuzz_secs} s"
    if ! cargo +nightly --version >/dev/null 2>&1; then
        rustup toolchain install nightly --profile minimal || true
    fi
    if cargo +nightly --version >/dev/null 2>&1 && ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        cargo install cargo-fuzz --locked || true
    fi
    if cargo +nightly fuzz --version >/dev/null 2>&1; then
        # A crash fails the run (scripts/fuzz.sh exits 1 naming the target and its input).
        ./scripts/fuzz.sh "$fuzz_secs"
    else
        # No nightly toolchain or cargo-fuzz could be installed (no registry access): say so
        # in the skip summary rather than fail the tests that did run.
        echo "SKIP fuzzing: the nightly toolchain or cargo-fuzz is missing and could not be installed" >>"$HVCERT_SKIP_LOG"
        echo "note: fuzzing skipped: nightly toolchain or cargo-fuzz unavailable" >&2
    fi
fi
# ---- end of fuzzing ---------------------------------------------------------------------
