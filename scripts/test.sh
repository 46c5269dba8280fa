#!/usr/bin/env bash
# Install the test dependencies, type-check the package and run the whole test suite (real models, real
# llama.cpp server, real DuckDB). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export LITELLM_LOCAL_MODEL_COST_MAP=True TOKENIZERS_PARALLELISM=false
.venv/bin/python -m mypy probekit --ignore-missing-imports   # the typed public API stays mypy-clean
exec .venv/bin/python -m pytest -q "$@"
