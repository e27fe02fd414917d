#!/usr/bin/python3
# check-readme-examples.py README EXAMPLE...: the README shows each example
# exactly as the tests run it.
#
# Every EXAMPLE (a file in tests/client) must appear in README as a fenced
# code block directly after the marker line
#     <!-- example: tests/client/NAME -->
# and the block's lines must be the file's lines, no more, no fewer. A marker
# naming a file that is not an EXAMPLE is an error too. TAP on stdout.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
import os
import re
import sys

MARKER = re.compile(r"^<!-- example: (\S+) -->$")
FENCE = re.compile(r"^```")


def blocks(readme_lines):
    """{path: block text} for every marker followed by a fenced block"""
    found = {}
    errors = []
    i = 0
    while i < len(readme_lines):
        m = MARKER.match(readme_lines[i].rstrip("\n"))
        i += 1
        if not m:
            continue
        path = m.group(1)
        if i >= len(readme_lines) or not FENCE.match(readme_lines[i]):
            errors.append(f"README line {i}: marker for {path} not directly followed by a ``` fence")
            continue
        i += 1
        start = i
        while i < len(readme_lines) and not FENCE.match(readme_lines[i]):
            i += 1
        if i >= len(readme_lines):
            errors.append(f"README line {start}: the block of {path} is not closed")
            break
        if path in found:
            errors.append(f"README: {path} shown twice")
        found[path] = "".join(readme_lines[start:i])
        i += 1
    return found, errors


def main():
    readme, examples = sys.argv[1], sys.argv[2:]
    with open(readme, encoding="utf-8") as f:
        found, errors = blocks(f.readlines())
    n = 0
    failed = False
    for error in errors:
        n += 1
        failed = True
        print(f"not ok {n} - {error}")
    wanted = {}
    for example in examples:
        wanted["tests/client/" + os.path.basename(example)] = example
    for path, example in wanted.items():
        n += 1
        with open(example, encoding="utf-8") as f:
            text = f.read()
        if path not in found:
            failed = True
            print(f"not ok {n} - {path} is not in the README (<!-- example: {path} --> and a fenced block)")
        elif found[path] != text:
            failed = True
            print(f"not ok {n} - the README's {path} differs from the file")
            import difflib
            for line in difflib.unified_diff(text.splitlines(), found[path].splitlines(),
                                             path, "README.md", lineterm=""):
                print("# " + line)
        else:
            print(f"ok {n} - the README shows {path} as it is")
    for path in sorted(set(found) - set(wanted)):
        n += 1
        failed = True
        print(f"not ok {n} - the README shows {path}, which the tests do not run")
    print(f"1..{n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
