#!/usr/bin/env bash
# Installs what the browser test of the VS Code extension (tests/vscode) needs, on Debian 12:
# - Debian packages: chromium and chromium-driver (Selenium drives headless Chromium), ripgrep
#   (VS Code's search; code-server's own @vscode/ripgrep would download a binary), g++, make and
#   python3 (node-gyp builds code-server's native modules), python3-venv;
# - code-server (VS Code in the browser; needs Node 20) from npm, version pinned below, into
#   target/editor-tools/code-server-<version>. Its postinstall script downloads from GitHub, so it
#   is installed with --ignore-scripts and the steps it would run are done here: the VS Code
#   server's dependencies (pinned by its npm-shrinkwrap.json), the native modules built from
#   source, Debian's rg in the place of the downloaded one. (Run by npm as root, that postinstall
#   script would also insist on `--unsafe-perm`; with --ignore-scripts nothing needs it: npm runs
#   the builds below as root.)
# - selenium and pytest from PyPI (tests/vscode/requirements.txt) into target/editor-tools/venv.
# Idempotent: a finished install leaves a stamp and is not redone. Prints nothing on success
# except what npm and apt print.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

CODE_SERVER_VERSION=4.100.3
TOOLS="$PWD/target/editor-tools"
PREFIX="$TOOLS/code-server-$CODE_SERVER_VERSION"

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
if ! { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
    && command -v rg >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 \
    && command -v make >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1 \
    && python3 -c 'import ensurepip' >/dev/null 2>&1; }; then
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        chromium chromium-driver ripgrep g++ make python3 python3-venv
fi

node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo none)"
if [ "$node_major" != "20" ]; then
    echo "error: code-server $CODE_SERVER_VERSION needs Node 20; \`node\` is ${node_major}" >&2
    exit 1
fi

if [ ! -f "$PREFIX/.installed" ]; then
    rm -rf "$PREFIX"
    mkdir -p "$PREFIX"
    npm install --prefix "$PREFIX" --ignore-scripts --no-audit --no-fund --loglevel=error \
        "code-server@$CODE_SERVER_VERSION"
    cs="$PREFIX/node_modules/code-server"
    # node-gyp uses the headers of the installed Node when they are there, instead of
    # downloading them.
    node_prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
    if [ -f "$node_prefix/include/node/node_api.h" ]; then export npm_config_nodedir="$node_prefix"; fi
    # argon2 (code-server's password hashing, loaded at start): built from source, not fetched.
    (cd "$PREFIX" && npm_config_build_from_source=true npm rebuild --loglevel=error argon2)
    # The VS Code server's own dependencies, as code-server's postinstall installs them.
    (cd "$cs/lib/vscode" && npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
    # Native modules of the VS Code server: logging, the process watchdog, terminals. (node-pty's
    # install script also runs `npx node-gyp` for a compile_commands.json; only its build is
    # wanted, so node-gyp runs directly, the one npm bundles.) kerberos (proxy authentication)
    # and the Windows-only modules are not needed.
    for module in @vscode/spdlog native-watchdog node-pty; do
        (cd "$cs/lib/vscode/node_modules/$module" \
            && npm exec --offline --loglevel=error -c 'node "$npm_config_node_gyp" rebuild --loglevel=error' >/dev/null)
    done
    # What the rest of the postinstall script does: node_modules.asar is node_modules, and
    # @vscode/ripgrep's binary, which its own postinstall would download.
    ln -sfn node_modules "$cs/lib/vscode/node_modules.asar"
    mkdir -p "$cs/lib/vscode/node_modules/@vscode/ripgrep/bin"
    ln -sfn "$(command -v rg)" "$cs/lib/vscode/node_modules/@vscode/ripgrep/bin/rg"
    # (Its config file and logs stay in the prefix, not in ~/.config and ~/.local/share.)
    XDG_DATA_HOME="$PREFIX/data" node "$cs/out/node/entry.js" --config "$PREFIX/config.yaml" --version >/dev/null
    touch "$PREFIX/.installed"
fi

if [ ! -x "$TOOLS/venv/bin/pip" ]; then
    rm -rf "$TOOLS/venv"
    python3 -m venv "$TOOLS/venv"
fi
"$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check -r tests/vscode/requirements.txt
