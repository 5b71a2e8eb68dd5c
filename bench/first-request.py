#!/usr/bin/env python3
"""The first request a fresh Vigie answers: spawn BINARY on a fresh data directory, read its
banner, then time one raw `GET /health` sent at once (or PAUSE seconds after the banner) and a
second one. Prints the medians over RUNS starts, with the banner's own "ready in" and the
time from spawn to the banner as this script reads it (exec and loading included).

    python3 bench/first-request.py target/release/vigie [PAUSE] [RUNS]

The difference between the first and the second request is what a fresh server still does
after its "ready" line (see BENCHMARKS.md, "Where a first start's 17 ms go").
"""
import statistics
import subprocess
import sys
import tempfile
import time

import fresh


def main():
    binary = sys.argv[1]
    pause = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    firsts, seconds, readies, banners = [], [], [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as data:
            spawned = time.perf_counter()
            server = fresh.serve(binary, data, stdout=subprocess.PIPE)
            host, port, ready = fresh.banner(server)
            banners.append((time.perf_counter() - spawned) * 1000)
            readies.append(ready)
            time.sleep(pause)
            firsts.append(fresh.get(host, port, b"/health"))
            seconds.append(fresh.get(host, port, b"/health"))
            server.kill()
            server.wait()
    print(
        f"{binary}: first /health {statistics.median(firsts):.2f} ms, "
        f"second {statistics.median(seconds):.2f} ms, \"ready in\" {statistics.median(readies)} ms, "
        f"banner {statistics.median(banners):.1f} ms after spawn "
        f"(medians of {runs}, pause {pause} s)"
    )


if __name__ == "__main__":
    main()
