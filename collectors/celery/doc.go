// Package celery taps Celery (Python) through its task events, the
// messages workers run with -E (worker_send_task_events) and producers
// with task_send_sent_event publish to the celeryev exchange, over
// RabbitMQ or Redis. It reads no task queue: it never takes, acknowledges
// or requeues an application's task.
//
// # Mapping (verified against Celery 5.2.6, kombu 5.2.4)
//
// Workers batch their events into task.multi messages whose body is a
// JSON array; producers send task.sent alone. Timestamps are float Unix
// seconds (time.time()), read to the microsecond. Only task-sent and
// task-received carry name, args, kwargs (Python repr() strings, read by
// a strict literal parser) and retries; only task-sent carries the
// queue. The tap remembers them per task id and puts job_type, queue,
// key, entity and attrs on every event of the task.
//
//	task-sent, retries 0            job.enqueued
//	task-sent, retries>0 or         nothing: a retry re-publishes the task
//	  parent_id = own id            (task-retried says the attempt failed)
//	task-received                   nothing (a worker prefetched it); its
//	                                retries+1 is the least attempt of the
//	                                next start
//	task-started                    job.started, attempt = starts counted
//	task-succeeded                  job.succeeded
//	task-retried                    job.failed retry=true, error = exception
//	task-failed                     job.dead, error = exception
//	task-rejected requeue=true      job.failed retry=true
//	task-rejected otherwise         job.dead
//	task-revoked                    job.discarded
//	worker-*, anything else         nothing (counted in Stats.Ignored)
//
// Celery says nothing when retries run out, and its events never carry
// max_retries: a failure that will be retried is task-retried, and
// task-failed is sent only when Celery will not run the task again (the
// exception was not retried, or max_retries was exceeded). So every
// task-failed is job.dead. The one exception is a worker lost under
// task_reject_on_worker_lost: its redelivery shows as another start after
// the job.dead.
//
// A redelivery (an acks_late task whose worker died) is a second
// task-received with the same id and retries and no flag, then a
// task-started: attempts count starts, so it is attempt 2. Events of a
// retry come in no fixed order (the re-published task-sent, task-retried
// and the next task-received are sent by different processes); the
// attempt of an event is the number of starts seen when it arrives.
//
// Event ids are "celery:UUID:TYPE:HOSTNAME:CLOCK:TIMESTAMP", from the
// event as Celery wrote it: a message read again is the same observation.
//
// # RabbitMQ: nothing lost across restarts
//
// The tap declares its own durable queue (queue, default
// "twice.celeryev.NAME"), bound to celeryev with routing key "task.#",
// and consumes it with manual acknowledgement. A position is "RUN:TAG",
// the random id of the connection and the delivery tag through which
// every message was read whole; Commit, after the checkpoint that covers
// it, acknowledges through that tag (multiple). What was read but not
// acknowledged — twice killed, the connection lost — RabbitMQ delivers
// again, and the engine counts it once by its id. Celery publishes
// events as transient messages: a RabbitMQ restart drops those queued.
//
// # Redis: pub/sub keeps nothing
//
// kombu publishes the exchange as pub/sub messages on channels
// "/DB.celeryev/ROUTING_KEY" in a JSON envelope with a base64 body; the
// tap subscribes to "/DB.celeryev/task.*". What is published while it is
// not subscribed is gone. A position is "MS:SEQ" (wall-clock
// milliseconds of receipt and a counter); at Start after a checkpoint,
// the time from that position to the new subscription is reported as a
// twicetype.Gap, and so is the time a broken subscription took to come
// back. Events received but not yet checkpointed when twice is killed are
// within that gap.
package celery
