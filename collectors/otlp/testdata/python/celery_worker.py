"""A Celery app instrumented with OpenTelemetry's Celery instrumentation,
exporting its traces with the OTLP/HTTP exporter to the URL in argv[1].

Tasks run eagerly (in this process, through Celery's own task tracer, so
the instrumentation's signals fire as in a worker): t-1 sends its receipt,
t-2's handler sends it twice, t-3 sends none, t-4 fails to charge.
"""
import sys

from celery import Celery
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

endpoint = sys.argv[1]
provider = TracerProvider(resource=Resource.create({"service.name": "billing-worker"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=30)))
trace.set_tracer_provider(provider)
CeleryInstrumentor().instrument()

app = Celery("billing", broker="memory://")
app.conf.task_always_eager = True
tracer = trace.get_tracer("billing")


def send_email(key):
    with tracer.start_as_current_span("smtp send", kind=SpanKind.CLIENT, attributes={
        "twice.effect": "email.sent",
        "twice.effect_key": key,
    }):
        pass  # the SMTP call


@app.task(name="billing.send_receipt")
def send_receipt(payment, times=1):
    trace.get_current_span().set_attribute("twice.key", payment)
    for _ in range(times):
        send_email("receipt/" + payment)


class Declined(Exception):
    pass


@app.task(name="billing.charge")
def charge(payment):
    trace.get_current_span().set_attribute("twice.key", payment)
    with tracer.start_as_current_span("charge", kind=SpanKind.CLIENT, attributes={
        "twice.effect": "payment.charged",
        "twice.effect_key": "charge/" + payment,
    }):
        raise Declined("card declined")


send_receipt.apply_async(args=["payment:1"], task_id="t-1")
send_receipt.apply_async(args=["payment:2"], kwargs={"times": 2}, task_id="t-2")
send_receipt.apply_async(args=["payment:3"], kwargs={"times": 0}, task_id="t-3")
charge.apply_async(args=["payment:4"], task_id="t-4")
provider.shutdown()  # exports what is left, waiting for the answer
print("exported")
