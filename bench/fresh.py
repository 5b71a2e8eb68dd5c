"""A Vigie server started on a fresh data directory, as the bench scripts here start one: any
free port, its own logs kept to warnings, nothing from the caller's environment."""
import subprocess


def serve(binary, data, stdout=subprocess.DEVNULL):
    """Starts `binary serve` on the empty directory `data`; the caller stops it."""
    return subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data", data],
        stdout=stdout,
        stderr=subprocess.DEVNULL,
        env={"VIGIE_LOG": "warn", "PATH": "/usr/bin:/bin"},
    )
