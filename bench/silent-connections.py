#!/usr/bin/env python3
"""Connections that never finish their request, against a server limited to systemd's default
of 1,024 open files: does `/health` still answer once the header deadline has passed?

    python3 bench/silent-connections.py BINARY [BINARY ...] [--connections 1100]

Each binary is started in turn on a fresh data directory under `ulimit -n 1024`; 1,100
connections each send half a request and then nothing. `/health` is asked at +5 s (while they
hold every file descriptor) and at +40 s (after Vigie's 30 s header deadline). A build without
the deadline answers neither; one with it answers 200 at +40 s.
"""

import argparse
import os
import resource
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(port):
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=3).status
    except Exception as e:  # the point is to report what a client would see
        return type(e).__name__


def measure(binary, connections):
    data, port = tempfile.mkdtemp(), free_port()
    server = subprocess.Popen(
        ["bash", "-c", f'ulimit -n 1024; exec "{binary}" serve --data "{data}" '
                       f"--listen 127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if health(port) == 200:
                break
            time.sleep(0.1)
        silent = []
        for _ in range(connections):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                silent.append(s)
            except OSError:
                break
        opened = time.time()
        answers = []
        for at in (5, 40):
            time.sleep(max(0.0, at - (time.time() - opened)))
            answers.append(f"/health at +{at} s: {health(port)}")
        print(f"{binary}: {len(silent)} silent connections; " + "; ".join(answers))
        for s in silent:
            s.close()
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(data, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binaries", nargs="+")
    parser.add_argument("--connections", type=int, default=1100)
    args = parser.parse_args()
    # This client needs more descriptors than the server it starves.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.connections + 256
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    for binary in args.binaries:
        measure(os.path.abspath(binary), args.connections)


if __name__ == "__main__":
    main()
