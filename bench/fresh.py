"""A Vigie server started on a fresh data directory, as the bench scripts here start one: any
free port, its own logs kept to warnings, nothing from the caller's environment."""
import socket
import subprocess
import time


def serve(binary, data, stdout=subprocess.DEVNULL, under=()):
    """Starts `binary serve` on the empty directory `data` (run by the command `under`, e.g.
    valgrind, when given); the caller stops it."""
    return subprocess.Popen(
        [*under, binary, "serve", "--listen", "127.0.0.1:0", "--data", data],
        stdout=stdout,
        stderr=subprocess.DEVNULL,
        env={"VIGIE_LOG": "warn", "PATH": "/usr/bin:/bin"},
    )


def banner(server):
    """Reads the banner of a server started with `stdout=subprocess.PIPE` up to its last line:
    (host, port, the "ready in" milliseconds), or None if it ended without one."""
    address, ready = None, None
    for line in server.stdout:
        line = line.decode().strip()
        if line.startswith("UI:"):
            address = line[3:].strip().removeprefix("http://").rsplit(":", 1)
        if " is ready in " in line:
            ready = int(line.split(" is ready in ")[1].split()[0])
        if line.startswith("Press Ctrl-C"):
            return address[0], address[1], ready
    return None


def get(host, port, path):
    """One raw `GET path` on a connection of its own, read to the end; its milliseconds."""
    started = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while s.recv(65536):
            pass
    return (time.perf_counter() - started) * 1000
