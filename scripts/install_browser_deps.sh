#!/usr/bin/env bash
# Installs what the real-browser test needs: Debian's Chromium and a local copy of MathJax 3
# (the built pages load MathJax from a CDN, which an offline machine cannot reach; the test
# answers those requests from this copy).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
if [ ! -f .cache/mathjax/node_modules/mathjax/es5/tex-mml-chtml.js ]; then
  mkdir -p .cache/mathjax
  npm install --silent --no-audit --no-fund --prefix .cache/mathjax mathjax@3 >/dev/null
fi
chromium --version
