#!/usr/bin/env python3
"""Fails when the top-level modules of a crate import each other in a cycle.

Usage: check-module-cycles.py CRATE_SRC_DIR...

A module is a file `src/NAME.rs` or a directory `src/NAME/`; an import is any `crate::NAME`
outside `#[cfg(test)]` modules. Tests may reach anywhere; library code imports one way.
"""
import os
import re
import sys


def graph(src):
    edges = {}
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            top = os.path.relpath(path, src).split(os.sep)[0].removesuffix(".rs")
            text = open(path, encoding="utf-8").read()
            text = re.sub(r"#\[cfg\(test\)\]\s*mod tests.*", "", text, flags=re.S)
            for used in set(re.findall(r"crate::(\w+)", text)):
                exists = os.path.exists(os.path.join(src, used + ".rs")) or os.path.isdir(os.path.join(src, used))
                if exists and used != top:
                    edges.setdefault(top, {}).setdefault(used, path)
    return edges


def cycle_from(edges, start):
    stack = [(start, [start])]
    seen = set()
    while stack:
        node, path = stack.pop()
        for nxt in edges.get(node, {}):
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return None


def main():
    failed = False
    for src in sys.argv[1:]:
        edges = graph(src)
        for module in sorted(edges):
            cycle = cycle_from(edges, module)
            if cycle:
                steps = [f"{a} -> {b} ({edges[a][b]})" for a, b in zip(cycle, cycle[1:])]
                print(f"{src}: import cycle through `{module}`:\n  " + "\n  ".join(steps))
                failed = True
                break
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
