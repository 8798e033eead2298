#!/usr/bin/env bash
# Set up, then run the test suite (slow tests included; add -m "not slow" to skip them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check pdmd tests benchmarks
# PDMD_COVERAGE=1: the package's coverage in the output, so gaps are visible (code run in subprocesses counts:
# pyproject.toml). Tracing adds about a third to the run time, so the default run goes without it.
cov=()
if [[ "${PDMD_COVERAGE:-0}" == 1 ]]; then
  cov=(--cov=pdmd --cov-report=term:skip-covered)
fi
exec .venv/bin/python -m pytest ${cov[@]+"${cov[@]}"} "$@"
