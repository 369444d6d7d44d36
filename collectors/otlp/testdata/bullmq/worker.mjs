// A real BullMQ producer and worker traced by BullMQ's own OpenTelemetry
// support (bullmq-otel) and the OpenTelemetry Node SDK, for the otlp
// tap's tests. It adds the jobs of JOBS, runs a Worker until each has
// completed, then flushes its spans to OTLP_URL with the SDK's
// OTLP/HTTP protobuf exporter and prints {"exported":N}.
//
// Each handler sends a receipt: a CLIENT span "smtp send" with
// twice.effect and twice.effect_key, a child of BullMQ's "process" span.
// A job whose data has crash: true throws after sending on its first
// attempt (the crash window); BullMQ retries it (attempts: 2).
//
// Environment: REDIS_URL, BULLMQ_PREFIX, BULLMQ_QUEUE, OTLP_URL, JOBS (a
// JSON array of {id, name, payment, crash}), MODULES (the folder
// scripts/deps.d/otlp.sh installed the packages into).
import { createRequire } from 'node:module';
import path from 'node:path';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const require = createRequire(path.join(env('MODULES'), 'package.json'));
const { Queue, Worker } = require('bullmq');
const { BullMQOtel } = require('bullmq-otel');
const IORedis = require('ioredis');
const otel = require('@opentelemetry/api');
const { NodeTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-node');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');

// Spans leave only at the end, in one export: an effect span and the
// process span it runs under travel together (twice links an effect to
// its job within one export request).
let exported = 0;
const exporter = new OTLPTraceExporter({ url: env('OTLP_URL') });
const counting = {
  export(spans, done) {
    exporter.export(spans, (r) => {
      if (r.code === 0) exported += spans.length;
      done(r);
    });
  },
  shutdown: () => exporter.shutdown(),
  forceFlush: () => exporter.forceFlush(),
};
const provider = new NodeTracerProvider({
  spanProcessors: [new BatchSpanProcessor(counting, {
    scheduledDelayMillis: 3_600_000, maxQueueSize: 10_000, maxExportBatchSize: 10_000,
  })],
});
provider.register();
const tracer = otel.trace.getTracer('billing');

const jobs = JSON.parse(env('JOBS'));
const connection = new IORedis(env('REDIS_URL'), { maxRetriesPerRequest: null });
const opts = { connection, prefix: env('BULLMQ_PREFIX'), telemetry: new BullMQOtel('billing') };
const queue = new Queue(env('BULLMQ_QUEUE'), opts);

let completed = 0;
let allDone;
const done = new Promise((resolve) => { allDone = resolve; });
const worker = new Worker(env('BULLMQ_QUEUE'), async (job) => {
  const span = tracer.startSpan('smtp send', {
    kind: otel.SpanKind.CLIENT,
    attributes: { 'twice.effect': 'email.sent', 'twice.effect_key': `receipt/${job.data.payment}` },
  });
  span.end();
  if (job.data.crash && job.attemptsMade === 0) {
    throw new Error('crashed after sending the receipt');
  }
}, { ...opts, concurrency: 1 });
worker.on('completed', () => {
  completed++;
  if (completed === jobs.length) allDone();
});
worker.on('error', (err) => console.error('worker error', err));

for (const j of jobs) {
  await queue.add(j.name, { payment: j.payment, crash: !!j.crash }, { jobId: j.id, attempts: 2 });
}
await done;
await worker.close();
await queue.close();
await provider.forceFlush();
await provider.shutdown();
await connection.quit();
console.log(JSON.stringify({ exported }));
