#!/usr/bin/env bash
# The CI job of a repository of Pulse pipelines: for every pipeline under the given paths,
#   1. pulsec check     type-check;
#   2. pulsec test      run its `test` blocks on virtual time;
#   3. pulsec diff      gate: the deployed version's keyed state must restore into the new one
#                       (the deployed version is the file at --deployed-rev, default HEAD~1, or a
#                       savepoint from --savepoint-dir); skipped when there is no deployed version;
#   4. pulsec image     a reproducible OCI image, OUT/<name>/image.tar;
#   5. pulsec k8s       manifests for it, OUT/<name>/k8s/, validated when kubernetes-validate is
#                       installed; with --push, the image is copied to the registry with skopeo.
# Exits non-zero when any step of any pipeline fails; every pipeline is still tried.
#
# Usage: examples/ci/pipeline-ci.sh [options] PATH...
#   PATH                 a pipeline file, or a directory searched for `*.pulse` files (a
#                        directory with none contributes its `pipeline.json` files)
#   --out DIR            where images and manifests go (default: ci-out)
#   --deployed-rev REV   git revision of the deployed pipelines (default: HEAD~1)
#   --savepoint-dir DIR  compare with DIR/<pipeline name>.savepoint instead, when that file exists
#   --registry PREFIX    image repository prefix for the manifests, e.g. registry.example.com/pulse
#   --tag TAG            image tag (default: `git describe --always --dirty`, else `latest`)
#   --replicas N         StatefulSet replicas (default: 1)
#   --push               copy each image to docker://PREFIX/<name>:TAG with skopeo (needs --registry)
#   --debug              build unoptimized binaries (faster; for trying the script out)
# Environment: PULSEC names the compiler (default: `pulsec` on PATH, else built from this
# repository with cargo).
set -euo pipefail

out="ci-out"
deployed_rev="HEAD~1"
savepoint_dir=""
registry=""
tag=""
replicas=1
push=false
debug_flag=()
paths=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --deployed-rev) deployed_rev="$2"; shift 2 ;;
        --savepoint-dir) savepoint_dir="$2"; shift 2 ;;
        --registry) registry="${2%/}"; shift 2 ;;
        --tag) tag="$2"; shift 2 ;;
        --replicas) replicas="$2"; shift 2 ;;
        --push) push=true; shift ;;
        --debug) debug_flag=(--debug); shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
        *) paths+=("$1"); shift ;;
    esac
done
[ ${#paths[@]} -gt 0 ] || { echo "usage: $0 [options] PATH... (see --help)" >&2; exit 2; }
if $push && [ -z "$registry" ]; then echo "--push needs --registry" >&2; exit 2; fi

# The compiler: $PULSEC, `pulsec` on PATH, or this repository's, built once.
if [ -n "${PULSEC:-}" ]; then
    pulsec="$PULSEC"
elif command -v pulsec >/dev/null 2>&1; then
    pulsec="$(command -v pulsec)"
else
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    echo "== building pulsec from $repo"
    export ROCKSDB_LIB_DIR="${ROCKSDB_LIB_DIR:-/usr/lib/x86_64-linux-gnu}"
    (cd "$repo" && cargo build --quiet -p pulsec)
    pulsec="$(cd "$repo" && cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/pulsec"
fi

in_git=false
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then in_git=true; fi
if [ -z "$tag" ]; then
    if $in_git; then tag="$(git describe --always --dirty)"; else tag="latest"; fi
fi

validator=""
if command -v kubernetes-validate >/dev/null 2>&1; then
    validator="$(command -v kubernetes-validate)"
elif [ -n "${repo:-}" ] && [ -x "$repo/target/tools/venv/bin/kubernetes-validate" ]; then
    validator="$repo/target/tools/venv/bin/kubernetes-validate"
fi

# The pipelines: files as given, directories searched.
pipelines=()
for path in "${paths[@]}"; do
    if [ -f "$path" ]; then
        pipelines+=("$path")
    elif [ -d "$path" ]; then
        found="$(find "$path" -name '*.pulse' -type f | sort)"
        [ -n "$found" ] || found="$(find "$path" -name 'pipeline.json' -type f | sort)"
        [ -n "$found" ] || { echo "no pipelines under $path" >&2; exit 2; }
        while IFS= read -r file; do pipelines+=("$file"); done <<<"$found"
    else
        echo "no such file or directory: $path" >&2; exit 2
    fi
done

mkdir -p "$out"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
summary=()
failed=0

# The deployed version of FILE at $deployed_rev, extracted with its directory (schema files sit
# beside pipelines); prints its path, or nothing when there is none.
deployed_file() {
    local file="$1" full dir into
    $in_git || return 0
    full="$(git ls-files --full-name --error-unmatch "$file" 2>/dev/null)" || return 0
    git cat-file -e "$deployed_rev:$full" 2>/dev/null || return 0
    dir="$(dirname "$full")"
    into="$scratch/deployed/$(echo "$full" | tr '/' '_')"
    mkdir -p "$into"
    (cd "$(git rev-parse --show-toplevel)" && git archive "$deployed_rev" -- "$dir") | tar -x -C "$into"
    echo "$into/$full"
}

for file in "${pipelines[@]}"; do
    echo
    echo "== $file"
    steps=""
    # 1. check (its `ok:` line names the pipeline).
    if ! check_output="$("$pulsec" check "$file" 2>&1)"; then
        echo "$check_output"
        summary+=("FAIL  $file: check"); failed=1; continue
    fi
    echo "$check_output" | grep -v '^ *[│┌=]' | grep -v '^$' || true
    name="$(echo "$check_output" | sed -n 's/^ok: `\(.*\)` (.*/\1/p' | head -1)"
    [ -n "$name" ] || { summary+=("FAIL  $file: no pipeline name in the check output"); failed=1; continue; }

    # 2. test
    if ! "$pulsec" test "$file"; then summary+=("FAIL  $name: test"); failed=1; continue; fi

    # 3. the upgrade gate
    savepoint="${savepoint_dir:+$savepoint_dir/$name.savepoint}"
    if [ -n "$savepoint" ] && [ -f "$savepoint" ]; then
        echo "-- pulsec diff --against $savepoint $file"
        if ! "$pulsec" diff --against "$savepoint" "$file"; then
            summary+=("FAIL  $name: its state in $savepoint does not restore into the new pipeline"); failed=1; continue
        fi
        steps+=" diff(savepoint)"
    elif old="$(deployed_file "$file")" && [ -n "$old" ]; then
        echo "-- pulsec diff $deployed_rev:$file $file"
        if ! "$pulsec" diff "$old" "$file"; then
            summary+=("FAIL  $name: the state of $deployed_rev does not restore into the new pipeline"); failed=1
            continue
        fi
        steps+=" diff($deployed_rev)"
    else
        echo "-- no deployed version of $name: skipping the diff gate"
        steps+=" diff(skipped)"
    fi

    # 4. the image
    mkdir -p "$out/$name"
    image="$out/$name/image.tar"
    if ! "$pulsec" image "$file" "${debug_flag[@]}" --tag "$tag" -o "$image"; then
        summary+=("FAIL  $name: image"); failed=1; continue
    fi
    reference="${registry:+$registry/}$name:$tag"

    # 5. manifests
    rm -rf "$out/$name/k8s"
    if ! "$pulsec" k8s "$file" -o "$out/$name/k8s" --image "$reference" --replicas "$replicas"; then
        summary+=("FAIL  $name: k8s"); failed=1; continue
    fi
    if [ -n "$validator" ]; then
        if ! "$validator" --strict --quiet "$out/$name/k8s"/*.yaml; then
            summary+=("FAIL  $name: the manifests do not validate"); failed=1; continue
        fi
        steps+=" k8s(validated)"
    else
        steps+=" k8s"
    fi
    if $push; then
        skopeo copy "oci-archive:$image:$tag" "docker://$reference" || {
            summary+=("FAIL  $name: push to $reference"); failed=1; continue
        }
        steps+=" pushed"
    fi
    size="$(du -h "$image" | cut -f1)"
    summary+=("ok    $name: check test$steps; $image ($size, oci-archive:$image:$tag) -> $reference")
done

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
