#!/usr/bin/env bash
# Kills the server (SIGKILL) N times at random moments during enrolments,
# CRF saves and uploads, and checks after each restart that nothing
# acknowledged was lost (tests/tests/faults.rs). Prints how many kills were
# survived. Usage: scripts/fault-rounds.sh [N=50]; OSTEO_TEST_DATABASE and
# OSTEO_TEST_POSTGRES_URL choose the database as for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p osteo-server
FAULT_ROUNDS="${1:-50}" cargo test -q -p osteo-tests --test faults -- --nocapture 2>&1 |
    grep -E "fault injection|panicked|test result"
