#!/usr/bin/env bash
# Prints the path of a real Prometheus for the metrics tests: one on PATH, or Debian's
# package unpacked (not installed: no service, no users) under target/tools.
set -euo pipefail
cd "$(dirname "$0")/../.."

if command -v prometheus >/dev/null; then
  command -v prometheus
  exit 0
fi
tools="target/tools/prometheus"
binary="$tools/root/usr/bin/prometheus"
if [ ! -x "$binary" ]; then
  mkdir -p "$tools"
  (
    cd "$tools"
    apt-get download prometheus >/dev/null 2>&1 || {
      apt-get update -qq >/dev/null
      apt-get download prometheus >/dev/null 2>&1
    }
    dpkg -x prometheus_*.deb root
  )
fi
realpath "$binary"
