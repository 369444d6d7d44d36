"""The Celery app of the celery tap's integration test (Celery 5.2).

Run by the test as `python3 -m celery -A tasks worker -E --pool=solo`
with BROKER (Celery's broker_url), EFFECTS (a file the tasks append their
effects to, as twice events) and HOLD (a folder: a task told to hold
writes HOLD/<task id>.held after its effect and waits until
HOLD/<task id>.go exists).
"""
import json
import os
import time
import uuid

from celery import Celery

app = Celery("tasks", broker=os.environ["BROKER"])
app.conf.update(
    task_send_sent_event=True,  # task-sent: the enqueue
    worker_send_task_events=True,  # -E
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    task_default_queue="celery",
)
if app.conf.broker_url.startswith("redis"):
    # kombu's Redis transport gives an unacknowledged task back only after
    # visibility_timeout (default an hour): the killed worker's task must
    # come back within the test.
    app.conf.broker_transport_options = {"visibility_timeout": 3}


def effect(task_id, attempt, payment):
    """Write the email a task sent, as a twice effect event.

    attempt is request.retries + 1: what a task knows of its attempt (a
    redelivery after a lost worker runs with the same retries)."""
    line = json.dumps({
        "id": "effect-" + uuid.uuid4().hex,
        "ts": int(time.time() * 1000),
        "kind": "effect",
        "effect": "email.sent",
        "effect_key": "receipt/" + payment,
        "job_id": task_id,
        "attempt": attempt,
    })
    fd = os.open(os.environ["EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def hold(task_id):
    base = os.path.join(os.environ["HOLD"], task_id)
    open(base + ".held", "w").close()
    while not os.path.exists(base + ".go"):
        time.sleep(0.05)


@app.task(bind=True, name="app.send_receipt", autoretry_for=(RuntimeError,),
          max_retries=3, default_retry_delay=0, acks_late=True)
def send_receipt(self, payment, fail_first=False, skip=False, hold_first=False):
    """Send the receipt of a payment: the effect the config expects."""
    if skip:
        return "skipped"  # "succeeds" without its effect
    effect(self.request.id, self.request.retries + 1, payment)
    if hold_first and not os.path.exists(os.path.join(os.environ["HOLD"], self.request.id + ".held")):
        hold(self.request.id)  # the test kills the worker here
    if fail_first and self.request.retries == 0:
        raise RuntimeError("smtp timeout after the send")
    return "sent"


@app.task(bind=True, name="app.charge_card", autoretry_for=(ValueError,),
          max_retries=1, default_retry_delay=0)
def charge_card(self, payment):
    """Always declined: exhausts max_retries, then task-failed."""
    raise ValueError("card declined")
