package bullmq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
)

// DefaultBatch is how many stream entries one read asks for.
const DefaultBatch = 1000

// quietRedis silences go-redis's own log lines (a failed dial, printed
// on stderr without a word of context): the tap reports every error it
// gets, with the source and queue, itself.
var quietRedis sync.Once

// newClient returns a client of the URL: redis:// or rediss:// (TLS),
// with an ACL user and password when the URL has them, and a database
// number as its path. It does no I/O.
func newClient(rawURL string) (*redis.Client, error) {
	quietRedis.Do(func() { redis.SetLogger(&logging.VoidLogger{}) })
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis URL %q: %w", redactURL(rawURL), err)
	}
	opt.DialTimeout = 5 * time.Second
	opt.ReadTimeout = 10 * time.Second
	opt.WriteTimeout = 10 * time.Second
	// The reader retries with its own backoff, and a transaction must not
	// be sent twice behind its back.
	opt.MaxRetries = -1
	opt.PoolSize = 4
	opt.DisableIdentity = true // no CLIENT SETINFO: one command less, and no ACL rule for it
	return redis.NewClient(opt), nil
}

// commandCounter counts the commands a client sends (MULTI and EXEC
// included), for Stats and for what the tap costs Redis.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// streamInfo is XINFO STREAM of a queue's events stream, read in the same
// transaction as the entries it is compared with.
type streamInfo struct {
	exists bool
	length int64
	// entriesAdded is every entry ever added (Redis 7.0; hasCounters
	// says whether the server has it).
	entriesAdded int64
	hasCounters  bool
	// first is the first entry's id (none when the stream is empty), last
	// the last id ever added.
	first, last streamID
}

// trimmed is how many entries were deleted from the stream: all of them
// before the first entry left, since BullMQ only trims.
func (s *streamInfo) trimmed() int64 { return s.entriesAdded - s.length }

// readResult is one read of a queue: the entries after a position and the
// stream's state at that instant.
type readResult struct {
	info    streamInfo
	entries []entry
	full    bool // as many entries as asked for: more may follow
}

// readAfter reads up to count entries of key after pos (and not after
// until, when until is not zero), with XINFO STREAM in the same
// transaction.
func readAfter(ctx context.Context, c redis.Cmdable, key string, pos, until streamID, count int64) (*readResult, error) {
	start := "-"
	if !pos.isZero() {
		start = pos.exclusive()
	}
	stop := "+"
	if !until.isZero() {
		stop = until.String()
	}
	var info *redis.XInfoStreamCmd
	var rng *redis.XMessageSliceCmd
	_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		info = p.XInfoStream(ctx, key)
		rng = p.XRangeN(ctx, key, start, stop, count)
		return nil
	})
	res := &readResult{}
	if err != nil && !noSuchKey(info.Err()) {
		return nil, fmt.Errorf("read %s after %s: %w", key, pos, err)
	}
	if info.Err() != nil {
		return res, nil // no stream yet: a queue that never had a job
	}
	if err := fillInfo(&res.info, info.Val()); err != nil {
		return nil, fmt.Errorf("XINFO STREAM %s: %w", key, err)
	}
	msgs := rng.Val()
	res.entries = make([]entry, 0, len(msgs))
	for _, m := range msgs {
		e, err := toEntry(m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		res.entries = append(res.entries, e)
	}
	res.full = int64(len(msgs)) == count
	return res, nil
}

// noSuchKey: XINFO STREAM of a key that does not exist.
func noSuchKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such key")
}

func fillInfo(dst *streamInfo, v *redis.XInfoStream) error {
	dst.exists = true
	dst.length = v.Length
	dst.entriesAdded = v.EntriesAdded
	var err error
	// Redis 7.0 added these counters; before, both are empty.
	dst.hasCounters = v.MaxDeletedEntryID != "" || v.RecordedFirstEntryID != ""
	if v.FirstEntry.ID != "" {
		if dst.first, err = parseStreamID(v.FirstEntry.ID); err != nil {
			return err
		}
	}
	if v.LastGeneratedID != "" {
		if dst.last, err = parseStreamID(v.LastGeneratedID); err != nil {
			return err
		}
	}
	return nil
}

func toEntry(m redis.XMessage) (entry, error) {
	id, err := parseStreamID(m.ID)
	if err != nil {
		return entry{}, err
	}
	f := make(map[string]string, len(m.Values))
	for k, v := range m.Values {
		switch v := v.(type) {
		case string:
			f[k] = v
		case nil:
		default:
			f[k] = fmt.Sprint(v)
		}
	}
	return entry{id: id, fields: f}, nil
}

// jobFields are the hash fields a lookup reads: what the payload paths
// see, and the attempts started.
var jobFields = []string{"name", "data", "opts", "timestamp", "ats"}

// lookupJobs reads the hashes of jobs of a queue (keyPrefix "PREFIX:QUEUE:")
// and, when withAfter, the entries of key after last, in one transaction:
// the attempts counted in a hash and the entries after last then describe
// the same instant.
func lookupJobs(ctx context.Context, c redis.Cmdable, keyPrefix, streamKey string, jobs []string, withAfter bool, last streamID) (*lookupResult, error) {
	hm := make([]*redis.SliceCmd, len(jobs))
	var rng *redis.XMessageSliceCmd
	fill := func(p redis.Pipeliner) error {
		for i, j := range jobs {
			hm[i] = p.HMGet(ctx, keyPrefix+j, jobFields...)
		}
		if withAfter {
			rng = p.XRange(ctx, streamKey, last.exclusive(), "+")
		}
		return nil
	}
	var err error
	if withAfter {
		// The counts and the entries after must be of one instant.
		_, err = c.TxPipelined(ctx, fill)
	} else {
		_, err = c.Pipelined(ctx, fill) // hashes alone: two commands less
	}
	if err != nil {
		return nil, fmt.Errorf("read %d job(s) of %s: %w", len(jobs), strings.TrimSuffix(keyPrefix, ":"), err)
	}
	res := &lookupResult{jobs: make(map[string]jobInfo, len(jobs))}
	for i, j := range jobs {
		res.jobs[j] = toJobInfo(j, hm[i].Val())
	}
	if rng != nil {
		for _, m := range rng.Val() {
			e, err := toEntry(m)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", streamKey, err)
			}
			res.after = append(res.after, e)
		}
	}
	return res, nil
}

// toJobInfo reads HMGET name data opts timestamp ats.
func toJobInfo(id string, vals []any) jobInfo {
	str := func(i int) (string, bool) {
		if i >= len(vals) {
			return "", false
		}
		s, ok := vals[i].(string)
		return s, ok
	}
	name, hasName := str(0)
	data, hasData := str(1)
	opts, hasOpts := str(2)
	ts, hasTS := str(3)
	ats, _ := str(4)
	if !hasName && !hasData && !hasOpts && !hasTS {
		return jobInfo{} // no hash
	}
	info := jobInfo{exists: true, name: name}
	info.ats, _ = strconv.ParseInt(ats, 10, 64)
	p := map[string]any{"id": id, "name": name}
	var problems []string
	for _, f := range []struct {
		key, raw string
		has      bool
	}{{"data", data, hasData}, {"opts", opts, hasOpts}} {
		if !f.has {
			continue
		}
		v, err := decodeJSON(f.raw)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s is not JSON (%v)", f.key, err))
			continue
		}
		p[f.key] = v
	}
	if hasTS {
		p["timestamp"] = jsonNumber(ts)
	}
	info.payload = p
	info.payloadErr = strings.Join(problems, "; ")
	return info
}

// discoverQueues lists the queues under prefix that c reads: the names
// of the config when they are all literal, else those whose events
// stream SCAN finds.
func discoverQueues(ctx context.Context, cl redis.Cmdable, c *Config) ([]string, error) {
	if lit := c.literalQueues(); lit != nil {
		return lit, nil
	}
	pat := globEscape(c.Prefix) + ":*:events"
	seen := map[string]bool{}
	var out []string
	var cursor uint64
	for {
		keys, next, err := cl.ScanType(ctx, cursor, pat, 1000, "stream").Result()
		if err != nil {
			return nil, fmt.Errorf("SCAN %s: %w", pat, err)
		}
		for _, k := range keys {
			q := strings.TrimSuffix(strings.TrimPrefix(k, c.Prefix+":"), ":events")
			if !seen[q] && c.matchQueue(q) {
				seen[q] = true
				out = append(out, q)
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	slices.Sort(out)
	return out, nil
}

// globEscape quotes the characters of s that Redis glob patterns read.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// waitEntries blocks up to wait until one of the streams has an entry
// after its position (XREAD BLOCK); it reports whether one has.
func waitEntries(ctx context.Context, c redis.Cmdable, keys []string, after []streamID, wait time.Duration) (bool, error) {
	if len(keys) == 0 {
		return false, nil
	}
	if wait < time.Millisecond {
		wait = time.Millisecond
	}
	args := make([]string, 0, 2*len(keys))
	args = append(args, keys...)
	for _, p := range after {
		args = append(args, p.String())
	}
	res, err := c.XRead(ctx, &redis.XReadArgs{Streams: args, Count: 1, Block: wait}).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("XREAD BLOCK: %w", err)
	}
	return len(res) > 0, nil
}
