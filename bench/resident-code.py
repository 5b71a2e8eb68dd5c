#!/usr/bin/env python3
"""What an idle Vigie's RSS is made of: spawn BINARY on a fresh data directory, wait WAIT
seconds (default 1, as `vigie-bench startup` samples), then print its memory by mapping
(`/proc/PID/smaps`) and, for the binary's code, which crates' functions lie on the pages the
process has mapped (the present bits of `/proc/PID/pagemap` against `nm`'s symbols). Run as
root: pagemap hides page frames, not presence, from others, but some kernels hide both.

    python3 bench/resident-code.py target/release/vigie [WAIT]

A function is counted as mapped when its first byte's page is. The kernel maps the pages
around each one a process touches (fault-around), so this is what the start touched and its
neighbours, by crate: the first `name::` of the demangled symbol, which names the crate of
generic code's definition (`core::ptr::drop_in_place<vigie_server::…>` counts as `core`).
See BENCHMARKS.md, "The first requests before the scheduled tasks".
"""
import collections
import os
import re
import struct
import subprocess
import sys
import tempfile
import time

import fresh

PAGE = os.sysconf("SC_PAGE_SIZE")


def code_mapping(pid, binary):
    """The (start, end, file offset) of the binary's executable mapping."""
    name = os.path.realpath(binary)
    for line in open(f"/proc/{pid}/maps"):
        fields = line.split()
        if len(fields) > 5 and fields[5] == name and fields[1].startswith("r-x"):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            return start, end, int(fields[2], 16)
    raise SystemExit(f"no executable mapping of {name} in process {pid}")


def code_segment(binary):
    """The (file offset, virtual address) of the binary's executable LOAD segment."""
    headers = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True).stdout
    for line in headers.splitlines():
        found = re.match(r"\s*LOAD\s+(0x\w+)\s+(0x\w+)\s+\S+\s+\S+\s+\S+\s+([RWE ]+?)\s+0x", line)
        if found and "E" in found.group(3):
            return int(found.group(1), 16), int(found.group(2), 16)
    raise SystemExit(f"no executable segment in {binary}")


def present_pages(pid, start, end):
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        pagemap.seek(start // PAGE * 8)
        entries = pagemap.read((end - start) // PAGE * 8)
    first = start // PAGE
    return {
        first + i
        for i, (entry,) in enumerate(struct.iter_unpack("<Q", entries))
        if entry >> 63
    }


def by_crate(binary, load_bias, present):
    symbols = subprocess.run(["nm", "-S", "-C", binary], capture_output=True, text=True).stdout
    total, mapped = collections.Counter(), collections.Counter()
    for line in symbols.splitlines():
        fields = line.split(" ", 3)
        if len(fields) < 4 or not fields[0] or fields[2] not in "tTwW":
            continue
        address, size, name = int(fields[0], 16), int(fields[1], 16), fields[3]
        crate = re.search(r"([a-z_][a-z0-9_]*)::", name)
        crate = crate.group(1) if crate else "(C and unnamed)"
        total[crate] += size
        if (address + load_bias) // PAGE in present:
            mapped[crate] += size
    return total, mapped


def smaps_summary(pid):
    rss = collections.Counter()
    name = ""
    for line in open(f"/proc/{pid}/smaps"):
        fields = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            name = f"{fields[5] if len(fields) > 5 else '[anonymous]'} {fields[1]}"
        elif fields[0] == "Rss:":
            rss[name] += int(fields[1])
    return rss


def main():
    binary = sys.argv[1]
    wait = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    mib = 1 << 20
    with tempfile.TemporaryDirectory() as data:
        server = fresh.serve(binary, data)
        try:
            time.sleep(wait)
            pid = server.pid
            status = dict(
                line.split(":", 1) for line in open(f"/proc/{pid}/status") if line.startswith("Rss")
            )
            print("  ".join(f"{k} {v.strip()}" for k, v in status.items()))
            for name, kib in smaps_summary(pid).most_common(6):
                print(f"  {kib / 1024:6.1f} MiB  {name}")
            start, end, offset = code_mapping(pid, binary)
            segment_offset, segment_address = code_segment(binary)
            present = present_pages(pid, start, end)
            load_bias = start - offset + segment_offset - segment_address
            print(
                f"code mapped: {len(present) * PAGE / mib:.1f} MiB "
                f"of {(end - start) / mib:.1f} MiB; by crate (symbols' sizes):"
            )
            total, mapped = by_crate(binary, load_bias, present)
            for crate, size in total.most_common(25):
                print(f"  {crate:24s} {size / mib:6.2f} MiB, mapped {mapped[crate] / mib:6.2f}")
        finally:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
