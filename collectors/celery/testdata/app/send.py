"""Send tasks for the celery tap's integration test.

    python3 send.py '[{"task": "app.send_receipt", "args": ["payment:1"], "kwargs": {}, "countdown": 0}]'

prints the task ids, one a line, in order.
"""
import json
import sys

from tasks import app

for spec in json.loads(sys.argv[1]):
    r = app.send_task(spec["task"], args=spec.get("args", []), kwargs=spec.get("kwargs", {}),
                      countdown=spec.get("countdown") or None)
    print(r.id, flush=True)
