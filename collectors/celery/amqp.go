package celery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/twicehq/twice/sources"
)

// EventExchange is the exchange Celery publishes its events to (a topic
// exchange, durable, as kombu declares it).
const EventExchange = "celeryev"

// Lane is the one lane of a celery stream: the event exchange.
const Lane = "celeryev"

// maxPollMessages bounds the messages of one Poll, so that a backlog is
// checkpointed (and acknowledged) as it is read.
const maxPollMessages = 5000

// amqpStream reads Celery's events from RabbitMQ through twice's own
// durable queue bound to celeryev with routing key "task.#" (task events
// only: task.sent, task.multi, task.started, …), acknowledged only by
// Commit, after the checkpoint that covers them. A position is
// "RUN:TAG": the connection it was read on (random, never reused) and the
// delivery tag through which every message is read whole; Commit acks
// through that tag, with multiple=true, when it is one of the current
// connection. Messages not yet acknowledged when twice stops or the
// connection drops are delivered again by RabbitMQ, to this queue only:
// the application's task queues are never read.
type amqpStream struct {
	name  string
	cfg   Config
	mp    *mapper
	queue string
	logf  func(format string, args ...any)

	// mu is held by Start, Poll, Commit and Shutdown.
	mu         sync.Mutex
	conn       *amqp.Connection
	ch         *amqp.Channel
	deliveries <-chan amqp.Delivery
	closed     chan *amqp.Error
	run        string // the connection's random id
	acked      uint64 // delivery tags acknowledged on this connection
	read       uint64 // the last delivery tag read
	started    bool

	hmu    sync.Mutex
	health error
}

func newAMQPStream(name string, cfg Config, mp *mapper, logf func(string, ...any)) *amqpStream {
	q := cfg.Queue
	if q == "" {
		q = "twice.celeryev." + name
	}
	return &amqpStream{name: name, cfg: cfg, mp: mp, queue: q, logf: logf}
}

// amqpURL is the broker URL as amqp091 reads it (kombu's pyamqp:// is
// amqp://).
func amqpURL(broker string) string {
	if rest, ok := strings.CutPrefix(broker, "pyamqp://"); ok {
		return "amqp://" + rest
	}
	return broker
}

// connect dials RabbitMQ and starts consuming twice's queue. s.mu is held.
func (s *amqpStream) connect(ctx context.Context) error {
	s.closeConn()
	cfg := amqp.Config{Heartbeat: 10 * time.Second, Locale: "en_US", Properties: amqp.Table{"connection_name": "twice " + s.name}}
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(dl), time.Second))
	}
	cfg.Dial = amqp.DefaultDial(timeout)
	conn, err := amqp.DialConfig(amqpURL(s.cfg.Broker), cfg)
	if err != nil {
		return fmt.Errorf("rabbitmq %s: %w", redactURL(s.cfg.Broker), err)
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return fmt.Errorf("rabbitmq %s: open a channel: %w", redactURL(s.cfg.Broker), err)
	}
	fail := func(what string, err error) error {
		conn.Close()
		return fmt.Errorf("rabbitmq %s: %s: %w", redactURL(s.cfg.Broker), what, err)
	}
	// As kombu declares it (celery/events/event.py: Exchange('celeryev',
	// type='topic'), durable): declaring it first lets twice bind before
	// any worker ran, and an equal declaration is a no-op.
	if err := ch.ExchangeDeclare(EventExchange, "topic", true, false, false, false, nil); err != nil {
		return fail("declare exchange "+EventExchange, err)
	}
	if _, err := ch.QueueDeclare(s.queue, true, false, false, false, nil); err != nil {
		return fail("declare queue "+s.queue, err)
	}
	if err := ch.QueueBind(s.queue, "task.#", EventExchange, false, nil); err != nil {
		return fail("bind queue "+s.queue, err)
	}
	prefetch := s.cfg.Prefetch
	if prefetch == 0 {
		prefetch = DefaultPrefetch
	}
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return fail("set prefetch", err)
	}
	deliveries, err := ch.ConsumeWithContext(context.WithoutCancel(ctx), s.queue, "twice-"+s.name, false, false, false, false, nil)
	if err != nil {
		return fail("consume "+s.queue, err)
	}
	var run [6]byte
	if _, err := rand.Read(run[:]); err != nil {
		return fail("random connection id", err)
	}
	s.conn, s.ch, s.deliveries = conn, ch, deliveries
	s.closed = conn.NotifyClose(make(chan *amqp.Error, 1))
	s.run, s.acked, s.read = hex.EncodeToString(run[:]), 0, 0
	return nil
}

func (s *amqpStream) closeConn() {
	if s.conn != nil {
		_ = s.conn.Close()
	}
	s.conn, s.ch, s.deliveries, s.closed = nil, nil, nil, nil
}

func (s *amqpStream) setHealth(err error) {
	s.hmu.Lock()
	s.health = err
	s.hmu.Unlock()
}

// Start connects; the positions of resume are of connections now closed,
// whose unacknowledged messages RabbitMQ delivers again.
func (s *amqpStream) Start(ctx context.Context, _ map[string]sources.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.connect(ctx)
	s.setHealth(err)
	s.started = err == nil
	return err
}

// Poll waits up to wait for messages and maps what arrived. It reconnects
// when the connection was lost (the messages not acknowledged come again).
func (s *amqpStream) Poll(ctx context.Context, wait time.Duration) ([]sources.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return nil, fmt.Errorf("celery stream %s: Poll before Start", s.name)
	}
	if s.conn == nil || s.conn.IsClosed() {
		if err := s.connect(ctx); err != nil {
			s.setHealth(err)
			return nil, err
		}
		s.logf("source %s: reconnected to RabbitMQ; unacknowledged events come again", s.name)
	}
	var recs []sources.Record
	timer := time.NewTimer(wait)
	defer timer.Stop()
	n := 0
	for n < maxPollMessages {
		var d amqp.Delivery
		var ok bool
		if n == 0 {
			select {
			case d, ok = <-s.deliveries:
			case <-timer.C:
				s.setHealth(nil)
				return nil, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		} else {
			select {
			case d, ok = <-s.deliveries:
			default:
				s.setHealth(nil)
				return recs, nil
			}
		}
		if !ok {
			err := fmt.Errorf("rabbitmq %s: connection closed", redactURL(s.cfg.Broker))
			if e := <-s.closedErr(); e != nil {
				err = fmt.Errorf("rabbitmq %s: %w", redactURL(s.cfg.Broker), e)
			}
			s.closeConn()
			s.setHealth(err)
			if len(recs) > 0 {
				return recs, nil
			}
			return nil, err
		}
		n++
		s.read = d.DeliveryTag
		recs = s.appendMessage(recs, d)
	}
	s.setHealth(nil)
	return recs, nil
}

// closedErr is the connection's close error, if it was sent.
func (s *amqpStream) closedErr() <-chan *amqp.Error {
	c := make(chan *amqp.Error, 1)
	select {
	case e := <-s.closed:
		c <- e
	default:
		c <- nil
	}
	return c
}

// appendMessage adds the records of one message. Its events but the last
// carry the position before the message, so that an acknowledgement never
// covers a message of which only part was taken. A message with no event
// (a task-received, a retry's task-sent) gets no record: a record that
// only moved the position would keep the lane from going idle, holding
// the other lanes back; the acknowledgement of the next event covers it
// (acks are cumulative), and until then it stays unacknowledged, to be
// delivered again after a restart, harmlessly.
func (s *amqpStream) appendMessage(recs []sources.Record, d amqp.Delivery) []sources.Record {
	before := sources.Position(s.run + ":" + strconv.FormatUint(d.DeliveryTag-1, 10))
	after := sources.Position(s.run + ":" + strconv.FormatUint(d.DeliveryTag, 10))
	out := s.mp.mapMessage(d.Body, int64(d.DeliveryTag))
	total := len(out.events) + len(out.malformed)
	i := 0
	pos := func() sources.Position {
		i++
		if i == total {
			return after
		}
		return before
	}
	for _, m := range out.malformed {
		recs = append(recs, sources.Record{Lane: Lane, Position: pos(), Malformed: m})
	}
	for _, e := range out.events {
		recs = append(recs, sources.Record{Lane: Lane, Position: pos(), Event: e})
	}
	return recs
}

// Commit acknowledges, on the current connection, every message through
// the position's delivery tag. Positions of an older connection are
// skipped: RabbitMQ delivers their messages again, and they are taken
// once by their ids.
func (s *amqpStream) Commit(_ context.Context, done map[string]sources.Position) error {
	p, ok := done[Lane]
	if !ok {
		return nil
	}
	run, tagText, ok := strings.Cut(string(p), ":")
	if !ok {
		return fmt.Errorf("celery stream %s: position %q is not RUN:TAG", s.name, p)
	}
	tag, err := strconv.ParseUint(tagText, 10, 64)
	if err != nil {
		return fmt.Errorf("celery stream %s: position %q is not RUN:TAG", s.name, p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil || run != s.run || tag <= s.acked || tag > s.read {
		return nil
	}
	if err := s.ch.Ack(tag, true); err != nil {
		return fmt.Errorf("rabbitmq: ack through delivery %d: %w", tag, err)
	}
	s.acked = tag
	return nil
}

// Shutdown closes the connection; what is not acknowledged stays in the
// queue for the next start. Safe to call twice, and without Start.
func (s *amqpStream) Shutdown(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.conn != nil && !s.conn.IsClosed() {
		err = s.conn.Close()
		if errors.Is(err, amqp.ErrClosed) {
			err = nil
		}
	}
	s.conn, s.ch, s.deliveries, s.closed = nil, nil, nil, nil
	s.started = false
	return err
}

// Health returns the error of the last connection attempt or Poll.
func (s *amqpStream) Health() error {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	return s.health
}
