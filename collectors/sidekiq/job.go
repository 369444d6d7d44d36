package sidekiq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/twicehq/twice/collectors/jobpath"
)

// job is what twice reads from one Sidekiq job payload, the JSON object
// Sidekiq keeps in queue lists, the retry and dead sets and work hashes.
type job struct {
	JID   string
	Class string
	// Wrapped is the ActiveJob class a JobWrapper runs; "" otherwise.
	Wrapped string
	Queue   string

	// EnqueuedAt is when the payload was last pushed to a queue list, as
	// written ("1796304318.5321271"); "" before its first push (a
	// scheduled job). Every push sets a new value, so it names the run
	// that follows the push.
	EnqueuedAt string
	enqueued   int64 // Unix ns; 0 when EnqueuedAt is ""

	// RetryCount is Sidekiq's retry_count: absent before the first
	// failure, 0 after it, n after n+1 failures.
	RetryCount    int64
	HasRetryCount bool
	// FailedAt is when the payload's last failure happened: retried_at
	// when present, else failed_at; "" before any failure.
	FailedAt string
	failed   int64
	Error    string
	// Retry is the payload's retry option: false, true or a count;
	// RetrySet says whether it was present.
	RetryFalse bool

	// Fields are the configured key, entity and attrs of the job.
	Fields jobpath.Fields
}

// attemptOfRun is which run of the job a payload about to run (in a queue
// or a work hash) starts: 1 before any failure, retry_count+2 after.
func (j *job) attemptOfRun() int64 {
	if !j.HasRetryCount {
		return 1
	}
	return j.RetryCount + 2
}

// attemptFailed is which run a payload of the retry or dead set failed:
// retry_count+1.
func (j *job) attemptFailed() int64 {
	if !j.HasRetryCount {
		return 1
	}
	return j.RetryCount + 1
}

// jobType is the class, or the ActiveJob class it wraps.
func (j *job) jobType() string {
	if j.Wrapped != "" {
		return j.Wrapped
	}
	return j.Class
}

// newMapping compiles c's key, entity and attrs: dot paths into a job's
// payload as Sidekiq stores it (args.0, args.0.payment, tags.0).
func newMapping(c Config) (*jobpath.Mapping, error) {
	return jobpath.NewMapping(c.Key, c.Entity, c.Attrs, nil)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// errPayload is wrapped by every reason a payload is not a job.
var errPayload = errors.New("not a Sidekiq job")

// parseJob reads a payload. It fails when the payload is not a JSON
// object with a string jid and class: Sidekiq itself cannot run such a
// payload.
func parseJob(raw []byte, m *jobpath.Mapping) (*job, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: invalid JSON: %v", errPayload, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", errPayload)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: a JSON %s, not an object", errPayload, jsonKind(v))
	}
	return jobFrom(obj, m)
}

// jobFrom reads a payload already decoded (with UseNumber).
func jobFrom(obj map[string]any, m *jobpath.Mapping) (*job, error) {
	j := &job{}
	var err error
	if j.JID, err = str(obj, "jid", true); err != nil {
		return nil, err
	}
	if j.Class, err = str(obj, "class", true); err != nil {
		return nil, err
	}
	j.Wrapped, _ = obj["wrapped"].(string)
	j.Queue, _ = obj["queue"].(string)
	if j.EnqueuedAt, j.enqueued, err = timestamp(obj, "enqueued_at"); err != nil {
		return nil, err
	}
	if j.FailedAt, j.failed, err = timestamp(obj, "retried_at"); err != nil {
		return nil, err
	}
	if j.FailedAt == "" {
		if j.FailedAt, j.failed, err = timestamp(obj, "failed_at"); err != nil {
			return nil, err
		}
	}
	if rc, ok := obj["retry_count"]; ok && rc != nil {
		n, ok := rc.(json.Number)
		i, err := n.Int64()
		if !ok || err != nil || i < 0 {
			return nil, fmt.Errorf("%w: retry_count %s is not a count", errPayload, describe(rc))
		}
		j.RetryCount, j.HasRetryCount = i, true
	}
	if r, ok := obj["retry"]; ok {
		j.RetryFalse = r == false
	}
	ec, _ := obj["error_class"].(string)
	em, _ := obj["error_message"].(string)
	switch {
	case ec != "" && em != "":
		j.Error = ec + ": " + em
	default:
		j.Error = ec + em
	}
	j.Fields = m.Resolve(obj)
	return j, nil
}

func str(obj map[string]any, name string, needed bool) (string, error) {
	v, ok := obj[name]
	if !ok || v == nil {
		if needed {
			return "", fmt.Errorf("%w: no %q", errPayload, name)
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok || (needed && s == "") {
		return "", fmt.Errorf("%w: %q is %s, not a non-empty string", errPayload, name, describe(v))
	}
	return s, nil
}

// timestamp reads a Sidekiq time: float seconds (Sidekiq ≤ 7) or integer
// milliseconds (Sidekiq 8). It returns the text as written and Unix ns.
func timestamp(obj map[string]any, name string) (string, int64, error) {
	v, ok := obj[name]
	if !ok || v == nil {
		return "", 0, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return "", 0, fmt.Errorf("%w: %q is %s, not a time", errPayload, name, describe(v))
	}
	ns, err := numberTime(n)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %q: %v", errPayload, name, err)
	}
	return n.String(), ns, nil
}

// numberTime reads seconds, or milliseconds when the number is past
// 1e11 (year 5138 in seconds, 1973 in milliseconds). Plain decimals are
// read exactly, to the nanosecond.
func numberTime(n json.Number) (int64, error) {
	bad := fmt.Errorf("%s is not a Unix time", n)
	s := n.String()
	if !strings.ContainsAny(s, "eE-") {
		whole, frac, _ := strings.Cut(s, ".")
		sec, err := strconv.ParseInt(whole, 10, 64)
		if err != nil || sec <= 0 {
			return 0, bad
		}
		scale := int64(1e9)
		if sec > 1e11 {
			scale = 1e6 // milliseconds
		}
		if sec > 1e10*(1e9/scale) {
			return 0, bad
		}
		var fns int64
		for i, d := 0, scale/10; i < len(frac) && d > 0; i, d = i+1, d/10 {
			if frac[i] < '0' || frac[i] > '9' {
				return 0, bad
			}
			fns += int64(frac[i]-'0') * d
		}
		return sec*scale + fns, nil
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
		return 0, bad
	}
	if f > 1e11 {
		f /= 1e3
	}
	if f > 1e10 {
		return 0, bad
	}
	return int64(math.Round(f * 1e9)), nil
}

func describe(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(shorten(v))
	case json.Number:
		return v.String()
	case nil:
		return "null"
	default:
		return "a JSON " + jsonKind(v)
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func shorten(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
