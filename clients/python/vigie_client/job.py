"""`Job`: one unit of background work reported to Vigie.

Every public method only records what happened and returns at once; a background thread
(one per job) sends it, in order:

- the job is created with a client-made id, so a creation retried after a lost answer is not
  created twice (Vigie answers 409, which means "already there");
- items are numbered (`seq`), gathered and sent in batches of `batch_size` or every
  `flush_interval` seconds, whichever comes first; a retried batch is not counted twice;
- progress, heartbeat and finish go out in the order they were made, after the items before
  them;
- a heartbeat goes out when nothing else was sent for `heartbeat` seconds, so a job that is
  alive but slow is not reported stalled, and a job whose process died is.

When Vigie cannot be reached the thread retries with backoff, logs one warning (logger
`vigie_client`), and keeps at most `max_buffer` items, dropping the oldest beyond that.
"""

import collections
import contextvars
import logging
import threading
import time
import uuid

from .transport import Backoff, Retryable, Transport, VigieError, parse_dsn

log = logging.getLogger("vigie_client")

# The job whose `with` block is running: `VigieHandler` tags log records made inside it.
_current_job = contextvars.ContextVar("vigie_current_job", default=None)


def current_job_id():
    """The id of the job whose `with Job.start(...)` block the caller is in, or None."""
    return _current_job.get()


ITEM_FIELDS = ("name", "file", "target", "comment", "error", "duration", "duration_ms", "at", "fields", "id")


class Job:
    """A job reported to Vigie. Make one with `Job.start(...)`."""

    def __init__(self, transport, body, *, batch_size=100, flush_interval=1.0, heartbeat=15.0,
                 max_buffer=10_000, finish_timeout=30.0):
        self.id = body["id"]
        self.name = body["name"]
        self.read_token = None
        self._transport = transport
        self._create_body = body
        self._created = False
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._heartbeat = heartbeat
        self._max_buffer = max_buffer
        self._finish_timeout = finish_timeout
        self._queue = collections.deque()  # ("item", dict) | ("call", path, body)
        self._in_flight = []  # the entries of the request being sent, removed once it is answered
        self._items_waiting = 0
        self._first_item_at = None
        self._seq = 0
        self._finished = False
        self._stop = False
        self._warned = False
        self.dropped = 0
        self._last_sent = time.monotonic()
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"vigie-job-{self.id[:8]}", daemon=True)
        self._thread.start()

    # --- making a job ---

    @classmethod
    def start(cls, server, key=None, *, name, total=None, kind=None, application=None, flow=None,
              launched_by=None, id=None, stall_after=None, meta=None, timeout=5.0, **options):
        """Starts reporting a job. `server` is Vigie's address and `key` the project key; or
        pass the project DSN (`http://KEY@host:8610/1`) as `server` and no key."""
        if key is None:
            server, key = parse_dsn(server)
        body = {"id": id or str(uuid.uuid4()), "name": name}
        for field, value in [("total", total), ("kind", kind), ("application", application),
                             ("flow", flow), ("launched_by", launched_by),
                             ("stall_after", stall_after), ("meta", meta)]:
            if value is not None:
                body[field] = str(value) if field == "launched_by" else value
        job = cls(Transport(server, key, timeout), body, **options)
        # The thread creates the job first: wait briefly so `read_token` is there for the
        # caller's page when Vigie answers quickly; otherwise the thread keeps trying.
        job._wait_created(min(timeout, 2.0))
        return job

    # --- reporting ---

    def item_ok(self, **fields):
        self.item("ok", **fields)

    def item_error(self, error=None, **fields):
        self.item("error", error=error, **fields)

    def item_skipped(self, **fields):
        self.item("skipped", **fields)

    def item(self, status, **fields):
        """Records one processed thing (an e-mail, a row, a file)."""
        unknown = set(fields) - set(ITEM_FIELDS)
        if unknown:
            raise TypeError(f"unknown item field(s): {', '.join(sorted(unknown))}")
        item = {k: v for k, v in fields.items() if v is not None}
        item["status"] = status
        with self._cv:
            if self._finished:
                return
            self._seq += 1
            item.setdefault("seq", self._seq)
            self._queue.append(("item", item))
            self._items_waiting += 1
            if self._first_item_at is None:
                self._first_item_at = time.monotonic()
            self._trim()
            if self._items_waiting >= self._batch_size:
                self._cv.notify()

    def progress(self, message=None, *, processed=None, failed=None, increment=None, total=None):
        """Reports counts directly (for jobs without items) and/or a message."""
        body = {k: v for k, v in [("message", message), ("processed", processed), ("failed", failed),
                                  ("increment", increment), ("total", total)] if v is not None}
        self._call("progress", body)

    def heartbeat(self, message=None):
        self._call("heartbeat", {"message": message} if message else {})

    def finish(self, status="completed", message=None):
        """Finishes the job and waits (at most `finish_timeout`) until Vigie has everything."""
        with self._cv:
            if self._finished:
                return
        body = {"status": status}
        if message:
            body["message"] = message
        self._call("finish", body)
        with self._cv:
            self._finished = True
            self._cv.notify()
        self._drain(self._finish_timeout)

    def fail(self, message=None):
        self.finish("failed", message)

    def cancel(self, message=None):
        self.finish("cancelled", message)

    def __enter__(self):
        self._context = _current_job.set(self.id)
        return self

    def __exit__(self, kind, error, tb):
        try:
            _current_job.reset(self._context)
        except ValueError:  # left in another context (a generator, a thread): nothing to undo
            pass
        if error is None:
            self.finish()
        elif isinstance(error, KeyboardInterrupt):
            self.finish("cancelled", "interrupted")
        else:
            self.finish("failed", f"{kind.__name__}: {error}")
        return False

    @property
    def url(self):
        return f"{self._transport.base}/jobs/{self.id}"

    # --- the background thread ---

    def _call(self, what, body):
        with self._cv:
            if self._finished:
                return
            self._queue.append(("call", f"/api/v1/jobs/{self.id}/{what}", body))
            self._cv.notify()

    def _trim(self):
        """Keeps at most `max_buffer` items waiting, dropping the oldest not being sent right
        now (lock held)."""
        in_flight = {id(e) for e in self._in_flight}
        while self._items_waiting > self._max_buffer:
            for i, entry in enumerate(self._queue):
                if entry[0] == "item" and id(entry) not in in_flight:
                    del self._queue[i]
                    self._items_waiting -= 1
                    self.dropped += 1
                    break

    def _wait_created(self, timeout):
        deadline = time.monotonic() + timeout
        with self._cv:
            while not self._created and time.monotonic() < deadline:
                self._cv.wait(0.05)

    def _drain(self, timeout):
        deadline = time.monotonic() + timeout
        with self._cv:
            while (self._queue or not self._created) and not self._stop and time.monotonic() < deadline:
                self._cv.wait(0.05)
            self._stop = True
            self._cv.notify()
            left = len(self._queue)
        self._thread.join(max(0.0, deadline - time.monotonic()) + 1.0)
        if left:
            log.warning("vigie: job %s finished with %d reports not delivered", self.id, left)

    def _next(self):
        """Waits for something to send; returns it without removing it (lock held)."""
        while True:
            if self._stop:
                return None
            now = time.monotonic()
            if self._queue:
                kind = self._queue[0][0]
                due = (self._items_waiting >= self._batch_size or self._finished
                       or kind == "call"
                       or (self._first_item_at is not None and now - self._first_item_at >= self._flush_interval))
                if due or not self._created:
                    return "work"
                wait = self._flush_interval - (now - self._first_item_at)
            else:
                if not self._created:
                    return "work"
                if now - self._last_sent >= self._heartbeat:
                    return "heartbeat"
                wait = self._heartbeat - (now - self._last_sent)
            self._cv.wait(max(0.01, wait))

    def _run(self):
        backoff = Backoff()
        while True:
            with self._cv:
                what = self._next()
            if what is None:
                return
            try:
                if not self._created:
                    self._create()
                elif what == "heartbeat":
                    self._transport.post(f"/api/v1/jobs/{self.id}/heartbeat", {})
                else:
                    self._send_next()
                backoff.reset()
                self._last_sent = time.monotonic()
                if self._warned:
                    log.info("vigie: reachable again, job %s reports resumed", self.id)
                    self._warned = False
            except Retryable as e:
                self._warn(e)
                delay = backoff.next_delay(e.retry_after)
                with self._cv:
                    if not self._stop:
                        self._cv.wait(delay)
            except VigieError as e:
                with self._cv:
                    if not self._created:
                        # Refused creation (a wrong key…): nothing later can be accepted.
                        log.warning("vigie: %s; job %s not reported", e, self.id)
                        self._stop = True
                    elif what == "work" and self._in_flight:
                        # Refused for good; drop this report and carry on with the rest.
                        log.warning("vigie: %s (job %s); report dropped", e, self.id)
                        self._pop_sent()
                    self._cv.notify_all()
            except Exception:  # never let a bug here kill the caller's job silently
                log.exception("vigie: unexpected error while reporting job %s", self.id)
                with self._cv:
                    self._cv.wait(1.0)

    def _create(self):
        try:
            answer = self._transport.post("/api/v1/jobs", self._create_body)
            self.read_token = answer.get("read_token")
        except VigieError as e:
            if e.status != 409:  # 409: a retried creation that had in fact succeeded
                raise
        with self._cv:
            self._created = True
            self._cv.notify_all()

    def _pop_sent(self):
        """Removes exactly the entries `_send_next` sent (lock held). Items added while the
        request was out sit behind them and stay; so do entries trimmed meanwhile (gone)."""
        sent = {id(e) for e in self._in_flight}
        self._in_flight = []
        kept = collections.deque()
        removed = 0
        for entry in self._queue:
            if id(entry) in sent:
                removed += entry[0] == "item"
            else:
                kept.append(entry)
        self._queue = kept
        self._items_waiting -= removed
        self._first_item_at = time.monotonic() if self._items_waiting else None

    def _send_next(self):
        with self._cv:
            if not self._queue:
                return
            head = self._queue[0]
            if head[0] == "call":
                path, body = head[1], head[2]
                batch = None
                self._in_flight = [head]
            else:
                entries = []
                for entry in self._queue:
                    if entry[0] != "item" or len(entries) >= self._batch_size:
                        break
                    entries.append(entry)
                batch = [entry[1] for entry in entries]
                self._in_flight = entries
        # Sent without the lock: the application keeps adding items meanwhile.
        if batch is None:
            self._transport.post(path, body)
        else:
            self._transport.post(f"/api/v1/jobs/{self.id}/items", {"items": batch})
        with self._cv:
            self._pop_sent()
            self._cv.notify_all()

    def _warn(self, error):
        if not self._warned:
            self._warned = True
            log.warning("vigie: cannot report job %s (%s); retrying in the background, "
                        "keeping up to %d items", self.id, error, self._max_buffer)
