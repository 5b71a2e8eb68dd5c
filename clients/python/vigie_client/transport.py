"""HTTP to Vigie with the standard library: JSON in and out, retries with backoff.

A call either succeeds, fails for good (a 4xx Vigie means: retrying would not help), or is
worth retrying (connection refused, timeout, 429, 5xx). Only the background thread calls
these, so waiting here never blocks the job's own code.
"""

import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request

USER_AGENT = "vigie-client-python/0.1"


class VigieError(Exception):
    """Vigie refused a request for good (bad input, unknown job, finished job...)."""

    def __init__(self, status, message):
        super().__init__(f"Vigie answered {status}: {message}")
        self.status = status
        self.message = message


class Retryable(Exception):
    """Vigie could not be reached or asked to come back later."""

    def __init__(self, reason, retry_after=None):
        super().__init__(reason)
        self.retry_after = retry_after


def parse_dsn(dsn):
    """`http://KEY@host:8610/1` -> (`http://host:8610`, `KEY`)."""
    parts = urllib.parse.urlsplit(dsn)
    if not parts.username or not parts.hostname:
        raise ValueError(f"not a Vigie DSN (expected http://KEY@host:port/PROJECT): {dsn!r}")
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    path = parts.path.rsplit("/", 1)[0]
    return f"{parts.scheme}://{netloc}{path}", parts.username


class Transport:
    def __init__(self, server, key, timeout=5.0):
        self.base = server.rstrip("/")
        self.key = key
        self.timeout = timeout

    def post(self, path, body):
        return self.request("POST", path, body)

    def get(self, path):
        return self.request("GET", path, None)

    def request(self, method, path, body):
        data = None if body is None else json.dumps(body).encode()
        return self.send(method, path, data, {"Content-Type": "application/json"} if data else {})

    def send(self, method, path, data, headers):
        """One request with a ready body (`bytes` or None); the answer's JSON, if any."""
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.key}")
        req.add_header("User-Agent", USER_AGENT)
        for name, value in headers.items():
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
                return json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            message = _error_message(e)
            if e.code == 429 or e.code >= 500:
                retry_after = e.headers.get("Retry-After")
                raise Retryable(f"HTTP {e.code}: {message}", _seconds(retry_after)) from None
            raise VigieError(e.code, message) from None
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            raise Retryable(str(getattr(e, "reason", e))) from None


def _error_message(error):
    try:
        return json.loads(error.read())["error"]["message"]
    except Exception:
        return error.reason


def _seconds(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class Backoff:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... up to `cap`."""

    def __init__(self, first=0.5, cap=30.0):
        self.first, self.cap, self.failures = first, cap, 0

    def reset(self):
        self.failures = 0

    def next_delay(self, retry_after=None):
        self.failures += 1
        delay = min(self.cap, self.first * (2 ** (self.failures - 1)))
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap))
        return delay * random.uniform(0.8, 1.2)

    def sleep(self, retry_after=None):
        time.sleep(self.next_delay(retry_after))
