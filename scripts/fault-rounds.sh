#!/usr/bin/env bash
# Kills the server (SIGKILL) N times at random moments during enrolments,
# CRF saves and uploads, and N more times during read signatures, the
# model's prediction locks and pathology entries and signatures, then once
# during the database lock; checks after each restart that nothing
# acknowledged was lost and no record is half-written (tests/tests/faults.rs).
# Prints how many kills were survived. Usage: scripts/fault-rounds.sh [N=50]; OSTEO_TEST_DATABASE and
# OSTEO_TEST_POSTGRES_URL choose the database as for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p osteo-server
# The two tests run one after the other (each starts its own servers).
FAULT_ROUNDS="${1:-50}" cargo test -q -p osteo-tests --test faults -- --nocapture --test-threads 1 2>&1 |
    grep -E "fault injection|panicked|test result"
