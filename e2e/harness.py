"""The real `vigie` binary, started as a person would: `vigie serve` on a temporary data
directory and a free port. Shared by the end-to-end suite and the Python client's tests."""

import email
import email.policy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def vigie_binary() -> Path:
    """Builds (if needed) and returns the debug binary the Rust tests also use."""
    subprocess.run(["cargo", "build", "--quiet", "-p", "vigie"], cwd=ROOT, check=True)
    return ROOT / "target" / "debug" / "vigie"


class Server:
    """A running `vigie serve`, with what its start-up banner said."""

    def __init__(self, binary: Path, data: str, *args: str, env: dict | None = None):
        self.binary = binary
        self.data = data
        self.process = subprocess.Popen(
            [str(binary), "serve", "--data", data, "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "VIGIE_LOG": "warn", **(env or {})},
        )
        self.banner = ""
        deadline = time.time() + 30
        while "Press Ctrl-C" not in self.banner:
            line = self.process.stdout.readline()
            if not line or time.time() > deadline:
                raise RuntimeError("vigie did not start: " + self.banner)
            self.banner += line
        self.url = re.search(r"UI:\s+(\S+)", self.banner).group(1)
        setup = re.search(r"First run:\s+open (\S+)", self.banner)
        self.setup_url = setup.group(1) if setup else None
        self.dsn = re.search(r"Sentry DSN:\s+(\S+)", self.banner).group(1)
        self.key = re.search(r"//([0-9a-f]+)@", self.dsn).group(1)

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            return response.read().decode()

    def admin_token(self) -> str:
        """An admin API token, made offline on the data directory as a script would."""
        out = subprocess.run(
            [str(self.binary), "token", "create", "--name", "e2e", "--scope", "admin", "--data", self.data],
            check=True, capture_output=True, text=True,
        )
        return out.stdout.strip()

    def cli(self, *args: str, token: str | None = None) -> subprocess.CompletedProcess:
        """Runs `vigie ARGS…` against this server (VIGIE_URL, and VIGIE_TOKEN when given)."""
        env = {**os.environ, "VIGIE_URL": self.url, "NO_COLOR": "1"}
        if token:
            env["VIGIE_TOKEN"] = token
        return subprocess.run([str(self.binary), *args], capture_output=True, text=True, env=env, timeout=60)

    def stop(self) -> int:
        """Ctrl-C, as a person would; returns the exit code."""
        self.record_answers()
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=15)

    def close(self):
        """Ends the server at a fixture's end, keeping what it answered first."""
        if self.process.poll() is None:
            self.record_answers()
            self.process.kill()

    def record_answers(self):
        """Leaves every (method, route, status) this server answered, read from its
        `vigie_http_requests_total`, in target/tmp/answered/: the Rust check
        `every_documented_status_is_one_the_router_really_answers` (run by .ci/run after this
        suite) compares them with the statuses the OpenAPI document promises."""
        try:
            metrics = self.get("/metrics")
        except OSError:
            return
        found = re.findall(
            r'^vigie_http_requests_total\{method="([A-Z]+)",route="([^"]+)",status="(\d+)"\}',
            metrics,
            re.M,
        )
        if not found:
            return
        answered = ROOT / "target" / "tmp" / "answered"
        answered.mkdir(parents=True, exist_ok=True)
        name = f"py-{os.getpid()}-{self.process.pid}-{time.time_ns()}.txt"
        (answered / name).write_text("".join(f"{m} {r} {s}\n" for m, r, s in found))


def wait_for(check, what, timeout=30, poll=0.5):
    """Calls `check` every `poll` seconds until it returns something true; returns it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = check()
        if found:
            return found
        time.sleep(poll)
    raise AssertionError(f"not within {timeout} s: {what}")


def celery(env, *args):
    """Starts `celery -A celery_app ARGS` (a worker or beat) from e2e/, its output discarded;
    end it with `stop`."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_app", *args, "--loglevel=warning"],
        cwd=ROOT / "e2e", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(process, timeout=10):
    """Ends a child process: asked first, killed if it has not gone after `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """Every message a real SMTP server (aiosmtpd) accepted, parsed, as (recipients, message)."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.rcpt_tos, message))
        return "250 OK"

    def wait(self, count, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.messages) < count:
            time.sleep(0.2)
        assert len(self.messages) >= count, f"{len(self.messages)} e-mails, {count} expected"
        return self.messages


def smtp_settings(port: int) -> dict:
    """The `VIGIE_SMTP_*` settings that send to the test's SMTP server on `port`."""
    return {"VIGIE_SMTP_HOST": "127.0.0.1", "VIGIE_SMTP_PORT": str(port),
            "VIGIE_SMTP_SECURITY": "none", "VIGIE_SMTP_FROM": "Vigie <vigie@example.com>"}


def api(srv, path: str, body=None, token: str | None = None):
    """Calls Vigie's JSON API on `srv` with an API token (`token`, else `srv.token`); a body
    makes it a POST."""
    req = urllib.request.Request(srv.url + path, headers={"Authorization": f"Bearer {token or srv.token}"})
    if body is not None:
        req.data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())
