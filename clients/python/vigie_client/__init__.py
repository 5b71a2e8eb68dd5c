"""Report background jobs to Vigie: live progress, one trace row per item, and a heartbeat so
Vigie notices when the job stops.

    from vigie_client import Job

    with Job.start("http://127.0.0.1:8610", "PROJECT_KEY", name="Send invoices", total=500,
                   kind="email", application="invoices", launched_by="1") as job:
        for invoice in invoices:
            try:
                send(invoice)
                job.item_ok(name=invoice.number, target=invoice.email, duration=0.4)
            except Exception as e:
                job.item_error(name=invoice.number, target=invoice.email, error=str(e))

Logs go to Vigie with `logging.getLogger().addHandler(VigieHandler(DSN, source="invoices"))`;
records logged inside a `with Job.start(...)` block carry the job's id.

Standard library only, Python 3.9+. Nothing here raises into your code because Vigie is slow
or down: calls only queue work for a background thread, which batches items (every 100 or
every second), retries with backoff, warns once, and keeps a bounded buffer meanwhile.
"""

from .job import Job, VigieError
from .logs import VigieHandler

__all__ = ["Job", "VigieError", "VigieHandler"]
__version__ = "0.1.0"
