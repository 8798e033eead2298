#!/usr/bin/env bash
# Set up, then run the demo workflow (lpad reset / lpad add workflows/agr_demo.yaml / rlaunch rapidfire)
# on the embedded store and print where the results are.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/pdmd demo "$@"
