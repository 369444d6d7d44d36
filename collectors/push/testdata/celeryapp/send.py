"""Send app.send_receipt tasks: python3 send.py '[["payment:1", false], ...]'
prints the task ids, one a line, in order."""
import json
import sys

from tasks import app

for payment, hold in json.loads(sys.argv[1]):
    print(app.send_task("app.send_receipt", args=[payment], kwargs={"hold_first": hold}).id, flush=True)
