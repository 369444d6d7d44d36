"""A Celery app whose task sends a real email through twice's SMTP source
and notifies a partner through twice's webhook proxy (the push taps'
end-to-end test with a real queue).

Run by the test as `python3 -m celery -A tasks worker -E` with BROKER
(Celery's broker_url), SMTP (host:port of twice's SMTP source), WEBHOOK
(the proxy's base URL) and HOLD (a folder: a task told to hold writes
HOLD/<task id>.held after its email and waits until the test kills the
worker).
"""
import json
import os
import smtplib
import time
import urllib.request
from email.message import EmailMessage
from email.utils import make_msgid

from celery import Celery

app = Celery("tasks", broker=os.environ["BROKER"])
app.conf.update(
    task_send_sent_event=True,
    worker_send_task_events=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    task_default_queue="celery",
)


def send_email(task_id, payment):
    """The receipt, as an application's mailer sends it: a new Message-ID
    for every send, the business key and the job in headers."""
    m = EmailMessage()
    m["From"] = "shop@shop.test"
    m["To"] = "ann@example.com"
    m["Subject"] = "Your receipt for " + payment
    m["Message-ID"] = make_msgid(domain="shop.test")
    m["X-Idempotency-Key"] = "receipt/" + payment
    m["X-Job-Id"] = task_id
    m.set_content("Thanks for your payment.")
    host, port = os.environ["SMTP"].rsplit(":", 1)
    with smtplib.SMTP(host, int(port), timeout=60) as c:
        c.send_message(m)


def notify(task_id, payment):
    req = urllib.request.Request(
        os.environ["WEBHOOK"] + "/notify", data=json.dumps({"payment": payment}).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": "notify/" + payment, "X-Job-Id": task_id},
        method="POST")
    with urllib.request.urlopen(req, timeout=60) as resp:
        resp.read()


@app.task(bind=True, name="app.send_receipt", acks_late=True)
def send_receipt(self, payment, hold_first=False):
    send_email(self.request.id, payment)
    held = os.path.join(os.environ["HOLD"], self.request.id + ".held")
    if hold_first and not os.path.exists(held):
        open(held, "w").close()
        while True:  # the test kills the worker here: after the email
            time.sleep(0.05)
    notify(self.request.id, payment)
    return "sent"
