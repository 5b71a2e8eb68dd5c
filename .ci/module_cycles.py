#!/usr/bin/env python3
"""Which top-level modules of vigie-server need each other (a uses b and b uses a): none may.

A module is a file or folder directly under crates/vigie-server/src (`jobs`, `logs`, `state`…);
"uses" is any `crate::b` path in a's Rust code (comments left out), grouped imports
(`use crate::{b, c}`) included. Templates are not read: they are compiled into the module that
declares them, and the paths they call are that module's to keep right.

    python3 .ci/module_cycles.py           check (fails naming each pair found)
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "crates" / "vigie-server" / "src"


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
    for p in found:
        print(f"{p} depend on each other; make one of them not need the other")
    print(f"{len(found)} module pairs of vigie-server depend on each other")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
