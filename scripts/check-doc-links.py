#!/usr/bin/env python3
"""Checks the links of Pulse's documentation; exits 1 and lists every problem found.

1. Every rule number (`G44`) used in the repository's Rust and Markdown files has an anchor
   `<a id="g44"></a>` in docs/reference/rules.md.
2. Every relative link and image in README.md and docs/**/*.md points at an existing file, and
   its `#anchor`, if any, exists in the target Markdown file (an explicit `<a id>` or a heading,
   slugged as GitHub does).
3. Outside code, every rule number cited in README.md and docs/**/*.md (except rules.md, which
   defines them) is a link to its rule. `--fix` rewrites bare numbers into such links.

Standard library only, so CI can run it with any Python 3: `python3 scripts/check-doc-links.py`.
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULES = os.path.join("docs", "reference", "rules.md")
SKIP_DIRS = {".git", "target", "node_modules", ".ci-cache"}
RULE_NUMBER = re.compile(r"\bG([0-9]+)\b")
# [text](target) and ![alt](target); the text may hold one level of brackets.
LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
ANCHOR_TAG = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
FENCE = re.compile(r"^\s*(```|~~~)")


def repo_files(extensions):
    for directory, subdirs, files in os.walk(ROOT):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIP_DIRS and not d.startswith("target"))
        for name in sorted(files):
            if name.endswith(extensions):
                yield os.path.relpath(os.path.join(directory, name), ROOT)


def doc_files():
    yield "README.md"
    for path in repo_files((".md",)):
        if path.startswith("docs" + os.sep):
            yield path


def prose_lines(text):
    """(line number, line) of the lines outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.split("\n"), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def split_code_spans(line):
    """The line cut into (is_code, text) pieces at inline code spans."""
    pieces, position = [], 0
    for match in re.finditer(r"(`+)(.+?)\1", line):
        pieces.append((False, line[position:match.start()]))
        pieces.append((True, match.group(0)))
        position = match.end()
    pieces.append((False, line[position:]))
    return pieces


def slug(heading):
    """GitHub's anchor for a heading: rendered text, lower case, punctuation dropped."""
    text = LINK.sub(lambda match: match.group(1), heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors_of(path, cache={}):
    if path not in cache:
        found, counts = set(), {}
        with open(os.path.join(ROOT, path), encoding="utf-8") as file:
            text = file.read()
        found.update(ANCHOR_TAG.findall(text))
        for _, line in prose_lines(text):
            heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if heading:
                base = slug(heading.group(1))
                count = counts.get(base, 0)
                counts[base] = count + 1
                found.add(base if count == 0 else f"{base}-{count}")
        cache[path] = found
    return cache[path]


def rule_link(path, number):
    target = os.path.relpath(RULES, os.path.dirname(path) or ".").replace(os.sep, "/")
    return f"[G{number}]({target}#g{number})"


def check_rule_anchors(problems):
    defined = {anchor for anchor in anchors_of(RULES) if re.fullmatch(r"g[0-9]+", anchor)}
    used = {}
    for path in repo_files((".rs", ".md")):
        with open(os.path.join(ROOT, path), encoding="utf-8", errors="replace") as file:
            for number, line in enumerate(file, 1):
                for match in RULE_NUMBER.finditer(line):
                    used.setdefault(f"g{match.group(1)}", f"{path}:{number}")
    for anchor, where in sorted(used.items(), key=lambda item: int(item[0][1:])):
        if anchor not in defined:
            problems.append(f"{where}: G{anchor[1:]} has no anchor `{anchor}` in {RULES}")


def check_links(path, text, problems):
    for number, line in prose_lines(text):
        for is_code, piece in split_code_spans(line):
            if is_code:
                continue
            for match in LINK.finditer(piece):
                target = match.group(2)
                if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("//"):
                    continue
                file_part, _, anchor = target.partition("#")
                resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
                where = f"{path}:{number}: `{target}`"
                if not os.path.exists(os.path.join(ROOT, resolved)):
                    problems.append(f"{where}: no file `{resolved}`")
                elif anchor and resolved.endswith(".md") and anchor not in anchors_of(resolved):
                    problems.append(f"{where}: no anchor `#{anchor}` in {resolved}")


def bare_rule_numbers(path, text, fix):
    """Rule numbers outside code and outside links; with `fix`, the text with them linked."""
    found, out_lines = [], []
    lines = text.split("\n")
    prose = dict(prose_lines(text))
    for number, line in enumerate(lines, 1):
        if number not in prose:
            out_lines.append(line)
            continue
        new_pieces = []
        for is_code, piece in split_code_spans(line):
            if is_code:
                new_pieces.append(piece)
                continue
            # Keep existing links whole; link numbers only in the text between them.
            parts, position = [], 0
            for match in LINK.finditer(piece):
                parts.append((False, piece[position:match.start()]))
                parts.append((True, match.group(0)))
                position = match.end()
            parts.append((False, piece[position:]))
            for is_link, part in parts:
                if is_link:
                    new_pieces.append(part)
                    continue
                for match in RULE_NUMBER.finditer(part):
                    found.append(f"{path}:{number}: G{match.group(1)} is not a link to its rule")
                new_pieces.append(RULE_NUMBER.sub(lambda match: rule_link(path, match.group(1)), part))
        out_lines.append("".join(new_pieces))
    return found, "\n".join(out_lines)


def main():
    fix = "--fix" in sys.argv[1:]
    problems = []
    check_rule_anchors(problems)
    for path in doc_files():
        with open(os.path.join(ROOT, path), encoding="utf-8") as file:
            text = file.read()
        if path != RULES:
            bare, fixed = bare_rule_numbers(path, text, fix)
            if fix and fixed != text:
                with open(os.path.join(ROOT, path), "w", encoding="utf-8") as file:
                    file.write(fixed)
                text = fixed
            elif not fix:
                problems.extend(bare)
        check_links(path, text, problems)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} documentation link problem(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
