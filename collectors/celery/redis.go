package celery

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/twicetype"
)

// GapReason is the reason of the coverage a Redis celery source reports
// lost: events published while twice was not subscribed.
const GapReason = "events published while twice was not subscribed (Redis pub/sub)"

// redisStream reads Celery's events from Redis, where kombu publishes the
// celeryev exchange as pub/sub messages on "/DB.celeryev/ROUTING_KEY"
// (kombu/transport/redis.py: keyprefix_fanout "/{db}." + exchange + "/" +
// routing key), each a JSON envelope whose body is the event's JSON in
// base64. twice subscribes to "/DB.celeryev/task.*": it reads no list,
// so it never takes, acknowledges or requeues an application's task.
//
// Pub/sub keeps nothing: what is published while twice is not subscribed
// is gone. A position is "MS:SEQ", the wall-clock milliseconds when a
// message was received and its number; a restart reports the time from
// the checkpoint's position to the new subscription as a Gap, and so
// does a subscription that broke and was made again.
type redisStream struct {
	name string
	cfg  Config
	mp   *mapper
	logf func(format string, args ...any)
	now  func() time.Time

	// mu is held by Start, Poll and Shutdown.
	mu        sync.Mutex
	client    *redis.Client
	ps        *redis.PubSub
	pattern   string
	gap       *twicetype.Gap // to deliver at the next Poll
	brokeAt   time.Time      // when the subscription broke; zero while up
	lastMS    int64
	seq       int64
	startedAt bool

	hmu    sync.Mutex
	health error
}

func newRedisStream(name string, cfg Config, mp *mapper, logf func(string, ...any), now func() time.Time) *redisStream {
	return &redisStream{name: name, cfg: cfg, mp: mp, logf: logf, now: now}
}

// redisPattern is the channel pattern of Celery's task events on the
// database of the broker URL.
func redisPattern(broker string) (string, error) {
	u, err := url.Parse(broker)
	if err != nil {
		return "", err
	}
	db := strings.Trim(u.Path, "/")
	if db == "" {
		db = "0"
	}
	if _, err := strconv.Atoi(db); err != nil {
		return "", fmt.Errorf("database %q is not a number", db)
	}
	return "/" + db + "." + EventExchange + "/task.*", nil
}

func (s *redisStream) setHealth(err error) {
	s.hmu.Lock()
	s.health = err
	s.hmu.Unlock()
}

// Health returns the error of the last Start or Poll.
func (s *redisStream) Health() error {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	return s.health
}

// Start subscribes. With a position in resume, the time from it to now is
// a gap: events published then were not received, or were received and
// not checkpointed before twice stopped.
func (s *redisStream) Start(ctx context.Context, resume map[string]sources.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeConn()
	err := s.subscribe(ctx)
	s.setHealth(err)
	if err != nil {
		return err
	}
	s.startedAt = true
	if p, ok := resume[Lane]; ok && s.gap == nil {
		ms, _, _ := strings.Cut(string(p), ":")
		if from, err := strconv.ParseInt(ms, 10, 64); err == nil && from > 0 {
			s.gap = &twicetype.Gap{Lane: Lane, Reason: GapReason, From: from * int64(time.Millisecond), To: s.now().UnixNano()}
		}
	}
	return nil
}

// subscribe connects and subscribes, waiting for Redis's confirmation.
func (s *redisStream) subscribe(ctx context.Context) error {
	opt, err := redis.ParseURL(s.cfg.Broker)
	if err != nil {
		return fmt.Errorf("redis %s: %w", redactURL(s.cfg.Broker), err)
	}
	pattern, err := redisPattern(s.cfg.Broker)
	if err != nil {
		return fmt.Errorf("redis %s: %w", redactURL(s.cfg.Broker), err)
	}
	client := redis.NewClient(opt)
	ps := client.PSubscribe(ctx, pattern)
	if _, err := ps.ReceiveTimeout(ctx, 30*time.Second); err != nil {
		_ = ps.Close()
		_ = client.Close()
		return fmt.Errorf("redis %s: subscribe to %s: %w", redactURL(s.cfg.Broker), pattern, err)
	}
	s.client, s.ps, s.pattern = client, ps, pattern
	return nil
}

func (s *redisStream) closeConn() {
	if s.ps != nil {
		_ = s.ps.Close()
	}
	if s.client != nil {
		_ = s.client.Close()
	}
	s.ps, s.client = nil, nil
}

// position returns the next record's position.
func (s *redisStream) position() sources.Position {
	ms := s.now().UnixMilli()
	if ms <= s.lastMS {
		ms = s.lastMS
	}
	s.lastMS = ms
	s.seq++
	return sources.Position(strconv.FormatInt(ms, 10) + ":" + strconv.FormatInt(s.seq, 10))
}

// Poll waits up to wait for messages and maps what arrived.
func (s *redisStream) Poll(ctx context.Context, wait time.Duration) ([]sources.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.startedAt || s.ps == nil {
		return nil, fmt.Errorf("celery stream %s: Poll before Start", s.name)
	}
	var recs []sources.Record
	if s.gap != nil {
		recs = append(recs, sources.Record{Lane: Lane, Position: s.position(), Lost: s.gap})
		s.gap = nil
	}
	timeout := wait
	for n := 0; n < maxPollMessages; n++ {
		msg, err := s.ps.ReceiveTimeout(ctx, max(timeout, time.Millisecond))
		timeout = time.Millisecond // drain what is there already
		var ne net.Error
		switch {
		case err != nil && errors.As(err, &ne) && ne.Timeout():
			s.setHealth(nil)
			return recs, nil
		case err != nil && ctx.Err() != nil:
			return recs, nil
		case err != nil:
			// go-redis subscribes again at the next receive; what is
			// published until then is lost.
			if s.brokeAt.IsZero() {
				s.brokeAt = s.now()
			}
			err = fmt.Errorf("redis %s: %w", redactURL(s.cfg.Broker), err)
			s.setHealth(err)
			if len(recs) > 0 {
				return recs, nil
			}
			return nil, err
		}
		if !s.brokeAt.IsZero() {
			recs = append(recs, sources.Record{Lane: Lane, Position: s.position(), Lost: &twicetype.Gap{
				Lane: Lane, Reason: GapReason, From: s.brokeAt.UnixNano(), To: s.now().UnixNano()}})
			s.brokeAt = time.Time{}
		}
		m, ok := msg.(*redis.Message)
		if !ok {
			continue // a subscription's confirmation, a pong
		}
		recs = s.appendMessage(recs, m)
	}
	s.setHealth(nil)
	return recs, nil
}

// envelope is kombu's Redis message (kombu/transport/virtual/base.py).
type envelope struct {
	Body            string `json:"body"`
	ContentType     string `json:"content-type"`
	ContentEncoding string `json:"content-encoding"`
	Properties      struct {
		BodyEncoding string `json:"body_encoding"`
	} `json:"properties"`
}

// decodeEnvelope returns the event body of a kombu Redis message.
func decodeEnvelope(payload string) ([]byte, error) {
	var env envelope
	if err := json.Unmarshal([]byte(payload), &env); err != nil {
		return nil, fmt.Errorf("not a kombu message: %v", err)
	}
	if env.ContentType != "" && env.ContentType != "application/json" {
		return nil, fmt.Errorf("content-type %q: Celery's event_serializer must be json", env.ContentType)
	}
	switch env.Properties.BodyEncoding {
	case "base64":
		b, err := base64.StdEncoding.DecodeString(env.Body)
		if err != nil {
			return nil, fmt.Errorf("body is not base64: %v", err)
		}
		return b, nil
	case "":
		return []byte(env.Body), nil
	default:
		return nil, fmt.Errorf("body_encoding %q", env.Properties.BodyEncoding)
	}
}

func (s *redisStream) appendMessage(recs []sources.Record, m *redis.Message) []sources.Record {
	pos := s.position()
	body, err := decodeEnvelope(m.Payload)
	if err != nil {
		mal := &twicetype.Malformed{Source: s.name, Line: s.seq, Reason: m.Channel + ": " + err.Error()}
		s.mp.count(func(st *Stats) { st.Messages++; st.Malformed++ })
		return append(recs, sources.Record{Lane: Lane, Position: pos, Malformed: mal})
	}
	out := s.mp.mapMessage(body, s.seq)
	for _, mal := range out.malformed {
		recs = append(recs, sources.Record{Lane: Lane, Position: pos, Malformed: mal})
	}
	for _, e := range out.events {
		recs = append(recs, sources.Record{Lane: Lane, Position: pos, Event: e})
	}
	// A message with no event gets no record: one that only moved the
	// position would keep the lane from going idle.
	return recs
}

// Commit does nothing: pub/sub has nothing to acknowledge.
func (s *redisStream) Commit(context.Context, map[string]sources.Position) error { return nil }

// Shutdown unsubscribes and closes the connection. Safe to call twice,
// and without Start.
func (s *redisStream) Shutdown(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeConn()
	s.startedAt = false
	return nil
}
