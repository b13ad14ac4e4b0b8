#!/usr/bin/env bash
# Builds the Pulse VS Code extension into editors/vscode/pulse-<version>.vsix: installs the pinned
# npm dependencies (package-lock.json), bundles the client with esbuild, packages with vsce.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
    echo "== npm: dependencies up to date"
else
    echo "== npm ci"
    npm ci --no-audit --no-fund
fi
echo "== esbuild"
npm run --silent build
echo "== vsce package"
version="$(node -p 'require("./package.json").version')"
npx --no-install vsce package --no-dependencies --allow-missing-repository --out "pulse-$version.vsix"
echo "built $(pwd)/pulse-$version.vsix"
