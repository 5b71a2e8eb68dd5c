#!/usr/bin/env python3
"""Writes the list of functions a Vigie start runs, for the linker to place side by side.

    python3 bench/code-order.py target/release/vigie [OUT]

Runs BINARY under valgrind's callgrind on a fresh data directory, as `vigie-bench startup`
measures a start: the banner, a few `GET /health`, one login page, then two seconds idle (the
background tasks' first ticks), then SIGTERM and the orderly shutdown. Every function of the
binary that ran is written to OUT (default `crates/vigie/code-order.txt`), one linker symbol
per line, sorted by name so that writing it again shows only the names that changed (the
order within the list matters little: all of it is touched). Two runs differ by a handful of
names, what the threads' timing happened to run. `crates/vigie/build.rs` hands that file to the linker
(`--symbol-ordering-file`), so what a start and an idle server touch lies in a few
contiguous megabytes rather than spread over the whole `.text`.

Why it matters: the kernel maps the 64 KiB around each page of the binary a process touches
(fault-around), and those pages count in its RSS. Spread out, a start touched about 13.5 MiB
of the binary's 20 MiB of code (BENCHMARKS.md, "Idle RSS is not a matter of binary size").

Names carry the hashes of the toolchain and of the dependencies' versions: run this again
after changing either (a name the binary no longer has is skipped by the linker, so a stale
file costs memory, never correctness). `bench/code-order.py BINARY --check` prints how many
of the file's names the binary still has, and fails below nine in ten (CI runs it on the
binary the README's command built).
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

import fresh

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "crates", "vigie", "code-order.txt"))
HEADER = "# Functions a start and a few idle seconds run, by name; written by bench/code-order.py\n"


def run_under_callgrind(binary, data, profile):
    valgrind = (
        "valgrind", "--tool=callgrind", "--demangle=no", "--compress-strings=no",
        "--compress-pos=no", f"--callgrind-out-file={profile}",
    )
    server = fresh.serve(binary, data, stdout=subprocess.PIPE, under=valgrind)
    address = fresh.banner(server)
    if address is None:
        server.kill()
        raise SystemExit(f"{binary} printed no banner under valgrind")
    host, port, _ = address
    for _ in range(3):
        fresh.get(host, port, b"/health")
    fresh.get(host, port, b"/login")
    time.sleep(2)
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)


def executed_functions(binary, profile):
    """The names of the binary's functions in callgrind's profile: each one ran."""
    binary = os.path.realpath(binary)
    names, in_binary = set(), False
    for line in open(profile):
        if line.startswith("ob="):
            in_binary = os.path.realpath(line[3:].strip()) == binary
        elif line.startswith("fn=") and in_binary:
            names.add(line[3:].strip())
    return sorted(names)


def binary_symbols(binary):
    listing = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True)
    return {line.split(" ", 2)[2] for line in listing.stdout.splitlines() if line.count(" ") >= 2}


def main():
    binary = sys.argv[1]
    if sys.argv[2:3] == ["--check"]:
        names = [n.strip() for n in open(DEFAULT_OUT) if n.strip() and not n.startswith("#")]
        have = binary_symbols(binary)
        found = sum(name in have for name in names)
        print(f"{found} of {len(names)} names in {DEFAULT_OUT} are symbols of {binary}")
        if found < 0.9 * len(names):
            raise SystemExit(
                "the code order is stale (a toolchain or dependency upgrade renamed the "
                f"functions): run `python3 bench/code-order.py {binary}`, then build again"
            )
        return
    out = sys.argv[2] if len(sys.argv) > 2 else DEFAULT_OUT
    with tempfile.TemporaryDirectory() as scratch:
        profile = os.path.join(scratch, "callgrind.out")
        run_under_callgrind(binary, os.path.join(scratch, "data"), profile)
        # Callgrind names code without a symbol by its address; the linker cannot place that.
        have = binary_symbols(binary)
        names = [name for name in executed_functions(binary, profile) if name in have]
    with open(out, "w") as file:
        file.write(HEADER)
        file.writelines(name + "\n" for name in names)
    print(f"{len(names)} functions written to {out}")


if __name__ == "__main__":
    main()
