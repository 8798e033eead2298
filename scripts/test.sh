#!/usr/bin/env bash
# Set up, then run the test suite (slow tests included; add -m "not slow" to skip them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check pdmd tests benchmarks
# coverage of the package in the output, so gaps are visible (code run in subprocesses counts: pyproject.toml)
exec .venv/bin/python -m pytest --cov=pdmd --cov-report=term:skip-covered "$@"
