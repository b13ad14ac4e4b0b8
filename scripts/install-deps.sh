#!/usr/bin/env bash
# System packages Pulse needs on Debian 12, installed only when missing:
# - librocksdb-dev, clang, libclang-dev: the runtime links Debian's RocksDB (bindgen needs
#   libclang); never the bundled 25-minute C++ build;
# - redis-server: the redis-sink tests start a real server on a loopback port.
set -euo pipefail
if [ -e /usr/lib/x86_64-linux-gnu/librocksdb.so ] && command -v clang >/dev/null 2>&1 \
    && command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update -q
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q librocksdb-dev clang libclang-dev redis-server
