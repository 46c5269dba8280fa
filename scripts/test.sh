#!/usr/bin/env bash
# Install the test dependencies and run the whole test suite (real models, real llama.cpp server, real DuckDB).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export LITELLM_LOCAL_MODEL_COST_MAP=True TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest -q "$@"
