#!/usr/bin/env python3
"""Which top-level modules of vigie-server need each other (a uses b and b uses a).

A module is a file or folder directly under crates/vigie-server/src (`jobs`, `ui`, `state`…);
"uses" is any `crate::b` path in a's Rust code (comments left out), grouped imports
(`use crate::{b, c}`) included. Templates are not read: they are compiled into the module that
declares them, and the paths they call are that module's to keep right.

The pairs known today are listed in module_cycles.txt. This check fails when a new pair
appears (a change made two modules depend on each other) and when a listed pair is gone (take
it off the list, so it cannot come back unnoticed). The list only shrinks.

    python3 .ci/module_cycles.py           check
    python3 .ci/module_cycles.py --write   rewrite the list from the source
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "crates" / "vigie-server" / "src"
KNOWN = Path(__file__).resolve().parent / "module_cycles.txt"


def module_of(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".rs")


def uses(text: str) -> set[str]:
    # Comments name modules without needing them.
    text = re.sub(r"//[^\n]*", "", text)
    found = set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", text))
    for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
        found.update(re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group))
    return found


def pairs() -> list[str]:
    deps: dict[str, set[str]] = {}
    for path in SRC.rglob("*.rs"):
        module = module_of(path)
        if module in ("lib", "main"):
            continue
        deps.setdefault(module, set()).update(uses(path.read_text()) - {module})
    both = set()
    for a, targets in deps.items():
        for b in targets:
            if a in deps.get(b, set()):
                both.add(" <-> ".join(sorted((a, b))))
    return sorted(both)


def main() -> int:
    found = pairs()
    if "--write" in sys.argv:
        KNOWN.write_text("".join(p + "\n" for p in found))
        print(f"{len(found)} pairs written to {KNOWN.name}")
        return 0
    known = [line.strip() for line in KNOWN.read_text().splitlines() if line.strip()]
    new = [p for p in found if p not in known]
    gone = [p for p in known if p not in found]
    for p in new:
        print(f"new: {p} depend on each other; make one of them not need the other")
    for p in gone:
        print(f"gone: {p}; take it off .ci/module_cycles.txt")
    print(f"{len(found)} module pairs of vigie-server depend on each other "
          f"({len(known)} known)")
    return 1 if new or gone else 0


if __name__ == "__main__":
    sys.exit(main())
