package sidekiq

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// newClient returns a client of cfg.Redis; it does no I/O.
func newClient(cfg Config) (*redis.Client, error) {
	opt, err := redis.ParseURL(cfg.Redis)
	if err != nil {
		return nil, fmt.Errorf("sidekiq: redis %q: %w", redactURL(cfg.Redis), err)
	}
	opt.ClientName = "twice"
	// Reads block for at most the stream wait; leave room for it.
	opt.ReadTimeout = 10 * time.Second
	opt.MaxRetries = 0 // the caller retries with backoff and jitter
	return redis.NewClient(opt), nil
}

// keys names Sidekiq's keys under a namespace.
type keys struct{ ns string }

func (k keys) of(name string) string {
	if k.ns == "" {
		return name
	}
	return k.ns + ":" + name
}

// readSnapshot reads Sidekiq's state for poll mode in two round trips:
// the names of queues and processes, then everything else in one
// MULTI/EXEC, so every structure is read as of one instant.
func readSnapshot(ctx context.Context, c *redis.Client, cfg Config, k keys, deadCursor float64) (*snapshot, error) {
	var queuesCmd, procsCmd *redis.StringSliceCmd
	if _, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		queuesCmd = p.SMembers(ctx, k.of("queues"))
		procsCmd = p.SMembers(ctx, k.of("processes"))
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the queues and processes sets: %w", err)
	}
	queueSet := map[string]bool{}
	for _, q := range queuesCmd.Val() {
		if cfg.matchQueue(q) {
			queueSet[q] = true
		}
	}
	for _, q := range cfg.Queues {
		if !strings.ContainsAny(q, "*?[\\") {
			queueSet[q] = true // a queue may be read before Sidekiq lists it
		}
	}
	queues := sortedKeys(queueSet)
	procs := procsCmd.Val()
	sort.Strings(procs)

	maxList := int64(cfg.MaxList)
	var (
		timeCmd   *redis.TimeCmd
		llen      = make([]*redis.IntCmd, len(queues))
		lrange    = make([]*redis.StringSliceCmd, len(queues))
		retryCard *redis.IntCmd
		retry     *redis.ZSliceCmd
		dead      *redis.ZSliceCmd
		beats     = make([]*redis.SliceCmd, len(procs))
		works     = make([][2]*redis.MapStringStringCmd, len(procs))
		stats     *redis.SliceCmd
	)
	min := "-inf"
	if deadCursor > 0 {
		min = strconv.FormatFloat(deadCursor, 'f', -1, 64)
	}
	if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		timeCmd = p.Time(ctx)
		for i, q := range queues {
			llen[i] = p.LLen(ctx, k.of("queue:"+q))
			lrange[i] = p.LRange(ctx, k.of("queue:"+q), -maxList, -1)
		}
		retryCard = p.ZCard(ctx, k.of("retry"))
		retry = p.ZRangeWithScores(ctx, k.of("retry"), 0, maxList-1)
		dead = p.ZRangeByScoreWithScores(ctx, k.of("dead"), &redis.ZRangeBy{Min: min, Max: "+inf"})
		for i, id := range procs {
			beats[i] = p.HMGet(ctx, k.of(id), "beat", "info")
			// Sidekiq 6 names the work hash <identity>:workers, 7 and
			// later <identity>:work.
			works[i][0] = p.HGetAll(ctx, k.of(id+":workers"))
			works[i][1] = p.HGetAll(ctx, k.of(id+":work"))
		}
		stats = p.MGet(ctx, k.of("stat:processed"), k.of("stat:failed"))
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read Sidekiq's structures: %w", err)
	}

	s := &snapshot{
		Now:       timeCmd.Val().UnixNano(),
		Queues:    make(map[string][]string, len(queues)),
		Truncated: map[string]bool{},
	}
	for i, q := range queues {
		s.Queues[q] = lrange[i].Val()
		if llen[i].Val() > maxList {
			s.Truncated[q] = true
		}
	}
	for _, z := range retry.Val() {
		s.Retry = append(s.Retry, zentry{Raw: fmt.Sprint(z.Member), Score: z.Score})
	}
	s.RetryTruncated = retryCard.Val() > maxList
	for _, z := range dead.Val() {
		s.Dead = append(s.Dead, zentry{Raw: fmt.Sprint(z.Member), Score: z.Score})
	}
	for i, id := range procs {
		p := process{Identity: id}
		if v := beats[i].Val(); len(v) == 2 && v[0] != nil {
			p.Exists = true
			p.Beat = fmt.Sprint(v[0])
			if info, ok := v[1].(string); ok {
				var in struct {
					Queues []string `json:"queues"`
				}
				if json.Unmarshal([]byte(info), &in) == nil && len(in.Queues) > 0 {
					p.Queues = in.Queues
				}
			}
		}
		for _, w := range works[i] {
			tids := sortedKeys(w.Val())
			for _, tid := range tids {
				if wk, ok := parseWork(w.Val()[tid]); ok {
					p.Work = append(p.Work, wk)
				}
			}
		}
		s.Processes = append(s.Processes, p)
	}
	if v := stats.Val(); len(v) == 2 {
		s.Processed = atoi(v[0])
		s.Failed = atoi(v[1])
	}
	return s, nil
}

func atoi(v any) int64 {
	s, _ := v.(string)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// parseWork reads one value of a work hash: {"queue", "payload" (the job,
// as a JSON string or object), "run_at"}.
func parseWork(raw string) (work, bool) {
	var v struct {
		Queue   string          `json:"queue"`
		Payload json.RawMessage `json:"payload"`
		RunAt   json.Number     `json:"run_at"`
	}
	if err := json.Unmarshal([]byte(raw), &v); err != nil || len(v.Payload) == 0 {
		// A value twice cannot read still names a running job: its
		// payload shows up as malformed.
		return work{Raw: raw}, true
	}
	w := work{Queue: v.Queue}
	var s string
	if json.Unmarshal(v.Payload, &s) == nil {
		w.Raw = s
	} else {
		w.Raw = string(v.Payload)
	}
	if v.RunAt != "" {
		if ns, err := numberTime(v.RunAt); err == nil {
			w.RunAt = ns
		}
	}
	return w, true
}
