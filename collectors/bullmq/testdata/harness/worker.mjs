// Real BullMQ producers and workers for the bullmq tap's tests: the test
// tells this program what to do, and the handlers write the side effects
// they perform, as spec events, to a file the test gives to twice.
//
//   node worker.mjs work          run a Worker until SIGTERM
//   node worker.mjs add SPEC.json add the jobs of SPEC (a JSON array of
//                                 {ref, name, data, opts}); prints one line
//                                 {"ref":…,"id":…} per job
//   node worker.mjs retry ID      replay a failed job, as an operator does:
//                                 job.retry('failed')
//   node worker.mjs load N RATE   add N jobs at RATE a second (benchmarks)
//
// Environment: REDIS_URL, BULLMQ_PREFIX, BULLMQ_QUEUE, BULLMQ_MODULES (the
// directory scripts/deps.d/bullmq.sh installed bullmq into), EFFECTS (the
// file effects are appended to), WORKER_LOG (the file workers report to:
// {"ready":PID}, {"hang":JOB,"pid":PID}).
//
// What a handler does is job.data.behave:
//   ok          perform the effect (linked by job_id and attempt), succeed
//   ok-keyonly  perform the effect, written with its effect_key only
//   crash-once  perform the effect; throw on the first attempt
//   silent      succeed without performing the effect
//   always-fail throw, without the effect
//   hang-once   perform the effect, then hang on the first attempt (the test
//               SIGKILLs the worker); perform it and succeed after that
//   tick        succeed; no effect expected
//
// Event time: the stream's entries carry Redis's clock in milliseconds, the
// effects this process's; both are the machine's clock. A handler waits for
// the next millisecond before and after the effect, so an effect never
// shares a millisecond with the job's start or its end: the order of the
// merged events is the order in which things happened.
import { appendFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`worker.mjs: ${name} is not set`);
    process.exit(2);
  }
  return v;
};

const require = createRequire(path.join(env('BULLMQ_MODULES'), 'package.json'));
const { Queue, Worker, Job } = require('bullmq');
const IORedis = require('ioredis');

const prefix = env('BULLMQ_PREFIX');
const queueName = env('BULLMQ_QUEUE');
const conns = [];
const connection = () => {
  const c = new IORedis(env('REDIS_URL'), { maxRetriesPerRequest: null });
  conns.push(c);
  return c;
};
// A connection given to bullmq stays open after close(): quit ours.
const quit = () => Promise.all(conns.map((c) => c.quit()));

const log = (obj) => appendFileSync(env('WORKER_LOG'), JSON.stringify(obj) + '\n');

// nextMs waits (busily: at most a millisecond) until the clock has moved
// past ms, and returns the new time.
const nextMs = (ms) => {
  let now = Date.now();
  while (now <= ms) now = Date.now();
  return now;
};

const effect = (job, linked) => {
  const ts = nextMs(Date.now());
  const ev = {
    id: `fx-${queueName}-${job.id}-${job.attemptsStarted}`,
    ts: new Date(ts).toISOString(),
    kind: 'effect',
    effect: 'email.sent',
    effect_key: `receipt/${job.data.payment}`,
  };
  if (linked) {
    ev.job_id = job.id;
    ev.attempt = job.attemptsStarted;
  }
  appendFileSync(env('EFFECTS'), JSON.stringify(ev) + '\n');
  nextMs(ts);
};

async function handle(job) {
  nextMs(Date.now()); // after the job's start, in milliseconds
  const first = job.attemptsStarted === 1;
  switch (job.data.behave) {
    case 'ok':
      effect(job, true);
      return 'sent';
    case 'ok-keyonly':
      effect(job, false);
      return 'sent';
    case 'crash-once':
      effect(job, true);
      if (first) throw new Error('crashed after sending the receipt');
      return 'sent';
    case 'silent':
      return 'sent (not really)';
    case 'always-fail':
      nextMs(Date.now());
      throw new Error('payment service unavailable');
    case 'hang-once':
      effect(job, true);
      if (first) {
        log({ hang: job.id, pid: process.pid });
        await new Promise(() => {}); // until SIGKILL
      }
      return 'sent';
    case 'tick':
      return 'tick';
    default:
      throw new Error(`unknown behave ${JSON.stringify(job.data.behave)}`);
  }
}

async function work() {
  const worker = new Worker(queueName, handle, {
    connection: connection(),
    prefix,
    concurrency: 4,
    // A killed worker's job is found stalled within about 4 s; a live
    // worker starved of CPU on a busy machine still renews its lock.
    lockDuration: 3000,
    stalledInterval: 1000,
    maxStalledCount: 1,
  });
  worker.on('error', (err) => console.error('worker error:', err.message));
  await worker.waitUntilReady();
  log({ ready: process.pid });
  const stop = async () => {
    await worker.close();
    await quit();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function add(specFile) {
  const spec = JSON.parse(readFileSync(specFile, 'utf8'));
  const queue = new Queue(queueName, { connection: connection(), prefix });
  for (const j of spec) {
    const job = await queue.add(j.name, j.data, j.opts || {});
    console.log(JSON.stringify({ ref: j.ref, id: job.id }));
  }
  await queue.close();
  await quit();
}

async function retry(id) {
  const queue = new Queue(queueName, { connection: connection(), prefix });
  const job = await Job.fromId(queue, id);
  if (!job) throw new Error(`job ${id} not found`);
  await job.retry('failed');
  await queue.close();
  await quit();
}

async function load(n, rate) {
  const queue = new Queue(queueName, { connection: connection(), prefix });
  const start = Date.now();
  const adds = [];
  for (let i = 0; i < n; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    // Not awaited one by one: the rate holds whatever a round trip takes.
    adds.push(queue.add('SendReceipt', { payment: `payment:${i}`, behave: 'ok' }));
  }
  await Promise.all(adds);
  console.error(`load: ${n} jobs added in ${(Date.now() - start) / 1000} s`);
  await queue.close();
  await quit();
}

const [cmd, ...args] = process.argv.slice(2);
const run = { work, add: () => add(args[0]), retry: () => retry(args[0]), load: () => load(+args[0], +args[1]) }[cmd];
if (!run) {
  console.error('usage: node worker.mjs work | add SPEC.json | retry ID | load N RATE');
  process.exit(2);
}
run().catch((err) => {
  console.error(err);
  process.exit(1);
});
