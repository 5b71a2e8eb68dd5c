#!/usr/bin/env python3
"""PostgreSQL beside SQLite for Sentry ingest, in one command: runs `vigie-bench sentry` with
BINARY on the embedded SQLite, then on PostgreSQL, alternating, ROUNDS times each, and prints
every run, the medians, and PostgreSQL's rate and Vigie CPU as a share of SQLite's.

    python3 bench/pg-ratio.py BINARY [ROUNDS] [-- vigie-bench sentry options]
    python3 bench/pg-ratio.py target/release/vigie 3 -- --events 5000 --transactions 10000

Why alternating: the machine is shared and its speed drifts over minutes, so the two engines
are compared run by run, not one block of runs after the other. The Issues page seeding is
skipped (`--issues 0`) unless the options say otherwise. PostgreSQL is VIGIE_BENCH_POSTGRES
(default: the local test database); each run gets a database of its own, dropped after.
"""
import os
import re
import statistics
import subprocess
import sys

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "vigie-bench")
POSTGRES = os.environ.get("VIGIE_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
# "  vigie errors (br): 2695 events/s durable (...); 594 µs of server CPU per event"
# "  vigie transactions (gzip): 5050 transactions/s durable; 242 µs of server CPU per transaction"
LINE = re.compile(r"vigie (errors \(\w+\)|transactions \(\w+\)): (\d+) \w+/s.*?(\d+) µs")


def run(binary, options, postgres):
    """One `vigie-bench sentry` run: {kind: (rate, µs of Vigie CPU)}."""
    env = dict(os.environ)
    env.pop("VIGIE_BENCH_POSTGRES", None)
    if postgres:
        env["VIGIE_BENCH_POSTGRES"] = POSTGRES
    out = subprocess.run(
        [BENCH, "sentry", "--binary", binary, *options],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    found = {m.group(1): (int(m.group(2)), int(m.group(3))) for m in LINE.finditer(out)}
    if not found:
        sys.exit(f"pg-ratio: no rate in vigie-bench's output:\n{out}")
    return found


def main():
    args = sys.argv[1:]
    options = args[args.index("--") + 1:] if "--" in args else []
    args = args[: args.index("--")] if "--" in args else args
    if not args:
        sys.exit(__doc__)
    binary = args[0]
    rounds = int(args[1]) if len(args) > 1 else 3
    if "--issues" not in options:
        options += ["--issues", "0"]
    runs = {"SQLite": [], "PostgreSQL": []}
    for n in range(1, rounds + 1):
        for engine in runs:
            found = run(binary, options, engine == "PostgreSQL")
            runs[engine].append(found)
            shown = ", ".join(f"{k} {r}/s ({c} µs)" for k, (r, c) in found.items())
            print(f"round {n} {engine}: {shown}", flush=True)
    print(f"\nmedians of {rounds} rounds | SQLite | PostgreSQL | PostgreSQL ÷ SQLite (rate; Vigie CPU)")
    for kind in runs["SQLite"][0]:
        med = {
            engine: tuple(statistics.median(r[kind][i] for r in found) for i in (0, 1))
            for engine, found in runs.items()
        }
        (sr, sc), (pr, pc) = med["SQLite"], med["PostgreSQL"]
        print(
            f"{kind} | {sr:.0f}/s, {sc:.0f} µs | {pr:.0f}/s, {pc:.0f} µs "
            f"| {pr / sr:.2f}; {pc / sc:.2f}"
        )


if __name__ == "__main__":
    main()
