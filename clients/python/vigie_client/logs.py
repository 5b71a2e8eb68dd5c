"""`VigieHandler`: a `logging.Handler` that sends your application's log records to Vigie.

    import logging
    from vigie_client import VigieHandler

    logging.getLogger().addHandler(VigieHandler("http://KEY@127.0.0.1:8610/1", source="invoices"))

How a record travels:

1. `emit` (in your thread) turns the record into a small dict — time, level, logger, the
   formatted message with its traceback, `extra=` fields, the current job's id — and appends
   it to a bounded buffer. That is all it does: it never waits on the network and never raises.
2. One background thread per handler takes up to `batch_size` records at a time (or what is
   there after `flush_interval` seconds), and posts them as gzip-compressed JSON lines to
   `POST /api/v1/logs`. Vigie answers once they are durable.
3. When Vigie cannot be reached, the batch goes back to the front of the buffer and the thread
   retries with backoff; it warns once on the `vigie_client` logger. While it waits, the buffer
   keeps the newest `max_buffer` records and counts the older ones it lets go in `dropped`.

`flush()` and `close()` (called by `logging.shutdown` at exit) wait at most `close_timeout`
seconds for delivery, and not at all while Vigie is unreachable.
"""

import collections
import gzip
import json
import logging
import threading
import time
import urllib.parse

from .job import current_job_id
from .transport import Backoff, Retryable, Transport, VigieError, parse_dsn

log = logging.getLogger("vigie_client")

# Attributes every LogRecord has; anything else on a record came from `extra=` and is sent as a
# field.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

_FORMATTER = logging.Formatter()


def _rfc3339(created):
    seconds = int(created)
    micros = int(round((created - seconds) * 1_000_000))
    if micros == 1_000_000:
        seconds, micros = seconds + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


class VigieHandler(logging.Handler):
    """Sends log records to Vigie in batches from a background thread. See the module doc."""

    def __init__(self, server, key=None, *, source=None, level=logging.NOTSET, batch_size=500,
                 flush_interval=1.0, max_buffer=10_000, timeout=5.0, close_timeout=5.0):
        super().__init__(level)
        if key is None:
            server, key = parse_dsn(server)
        self._transport = Transport(server, key, timeout)
        self._path = "/api/v1/logs"
        if source:
            self._path += "?" + urllib.parse.urlencode({"source": source})
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_buffer = max_buffer
        self._close_timeout = close_timeout
        self._buffer = collections.deque()
        self._in_flight = 0
        self._first_at = None  # when the oldest waiting record arrived
        self._flushing = False
        self._stop = False
        self._failing = False
        self._refusals = set()
        self.dropped = 0
        self.sent = 0
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="vigie-logs", daemon=True)
        self._thread.start()

    # --- in the application's threads ---

    def emit(self, record):
        # The client's own warnings describe failures to reach Vigie: sending them there would
        # only feed the buffer while it is down.
        if record.name == "vigie_client" or record.name.startswith("vigie_client."):
            return
        try:
            entry = self._entry(record)
        except Exception:
            self.handleError(record)
            return
        with self._cv:
            if self._stop:
                return
            if len(self._buffer) >= self._max_buffer:
                self._buffer.popleft()
                self.dropped += 1
            self._buffer.append(entry)
            if self._first_at is None:
                self._first_at = time.monotonic()
            if len(self._buffer) >= self._batch_size:
                self._cv.notify()

    def _entry(self, record):
        entry = {
            "timestamp": _rfc3339(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        traceback = []
        formatter = self.formatter or _FORMATTER
        if record.exc_info:
            record.exc_text = record.exc_text or formatter.formatException(record.exc_info)
        if record.exc_text:
            traceback.append(record.exc_text)
        if record.stack_info:
            traceback.append(formatter.formatStack(record.stack_info))
        if traceback:
            entry["exception"] = "\n".join(traceback)
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_") and name not in entry:
                entry[name] = value if isinstance(value, (str, int, float, bool)) or value is None else repr(value)
        if "job_id" not in entry:
            job = current_job_id()
            if job:
                entry["job_id"] = job
        return entry

    def flush(self):
        """Waits (at most `close_timeout`) until what was logged so far is in Vigie."""
        deadline = time.monotonic() + self._close_timeout
        with self._cv:
            self._flushing = True
            self._cv.notify()
            while ((self._buffer or self._in_flight) and not self._failing and not self._stop
                   and time.monotonic() < deadline):
                self._cv.wait(0.05)
            self._flushing = False

    def close(self):
        with self._cv:
            if self._stop:  # `logging.shutdown` closes handlers a second time at exit
                return
        self.flush()
        with self._cv:
            self._stop = True
            left = len(self._buffer)
            self._cv.notify()
        self._thread.join(1.0)
        if left:
            log.warning("vigie: closing with %d log records not delivered", left)
        super().close()

    # --- the background thread ---

    def _take(self):
        """Waits until a batch is due and takes it off the buffer (lock held); None to stop."""
        while True:
            if self._stop:
                return None
            if self._buffer:
                waited = time.monotonic() - self._first_at
                if len(self._buffer) >= self._batch_size or self._flushing or waited >= self._flush_interval:
                    count = min(len(self._buffer), self._batch_size)
                    batch = [self._buffer.popleft() for _ in range(count)]
                    self._in_flight = count
                    self._first_at = time.monotonic() if self._buffer else None
                    return batch
                self._cv.wait(self._flush_interval - waited)
            else:
                self._cv.wait()

    def _give_back(self, batch):
        """Puts an unsent batch back in front, keeping at most `max_buffer` (lock held)."""
        self._buffer.extendleft(reversed(batch))
        while len(self._buffer) > self._max_buffer:
            self._buffer.popleft()
            self.dropped += 1
        self._first_at = time.monotonic()

    def _run(self):
        backoff = Backoff()
        while True:
            with self._cv:
                batch = self._take()
            if batch is None:
                return
            try:
                self._send(batch)
                backoff.reset()
                with self._cv:
                    self.sent += len(batch)
                    if self._failing:
                        log.info("vigie: reachable again, sending logs")
                        self._failing = False
            except Retryable as e:
                with self._cv:
                    self._give_back(batch)
                    if not self._failing:
                        self._failing = True
                        log.warning("vigie: cannot send logs (%s); retrying in the background, "
                                    "keeping up to %d records", e, self._max_buffer)
                    self._in_flight = 0
                    self._cv.notify_all()
                    if not self._stop:
                        self._cv.wait(backoff.next_delay(e.retry_after))
                continue
            except VigieError as e:
                # A refusal (a wrong key, a body Vigie cannot read) repeats for every batch:
                # say it once per reason, count the rest in `dropped`.
                if e.message not in self._refusals:
                    self._refusals.add(e.message)
                    log.warning("vigie: %s; log records dropped", e)
                with self._cv:
                    self.dropped += len(batch)
            except Exception:  # a bug here must not kill logging silently
                log.exception("vigie: unexpected error while sending logs")
            with self._cv:
                self._in_flight = 0
                self._cv.notify_all()

    def _send(self, batch):
        lines = "\n".join(json.dumps(entry, default=repr, ensure_ascii=False) for entry in batch)
        body = gzip.compress(lines.encode("utf-8", "replace"), compresslevel=1)
        self._transport.send("POST", self._path, body, {
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
        })
