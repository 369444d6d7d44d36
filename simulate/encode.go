package simulate

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// appendEvent writes e as one JSON line (without the newline). Every
// string the generator makes is plain ASCII, so strconv's quoting is JSON.
func appendEvent(b []byte, id string, e *event) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendQuote(b, id)
	b = append(b, `,"ts":"`...)
	b = time.UnixMilli(e.ts).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, `","kind":`...)
	b = strconv.AppendQuote(b, e.kind)
	str := func(name, v string) {
		if v != "" {
			b = append(b, ',', '"')
			b = append(b, name...)
			b = append(b, '"', ':')
			b = strconv.AppendQuote(b, v)
		}
	}
	str("queue", e.queue)
	str("job_type", e.jobType)
	str("job_id", e.jobID)
	if e.attempt > 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendInt(b, int64(e.attempt), 10)
	}
	str("key", e.key)
	str("effect", e.effect)
	str("effect_key", e.effectKey)
	str("entity", e.entity)
	if e.seq > 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendInt(b, int64(e.seq), 10)
	}
	if e.terminal {
		b = append(b, `,"terminal":true`...)
	}
	if e.hasRetry {
		b = append(b, `,"retry":`...)
		b = strconv.AppendBool(b, e.retry)
	}
	str("error", e.errMsg)
	if e.status != "" {
		b = append(b, `,"attrs":{"status":`...)
		b = strconv.AppendQuote(b, e.status)
		b = append(b, '}')
	}
	return append(b, '}')
}

// noiseWriter passes lines on, in blocks of Noise.Window lines within
// which lines may swap places, copies repeated and malformed lines added.
// No line moves further than its block: far inside the engine's reorder
// buffer, so the audit sees the stream as if in order.
type noiseWriter struct {
	w     func([]byte) error
	noise Noise
	rng   *rand.Rand
	stats *Stats
	block [][]byte
	ts    int64
}

// malformedLines are lines twice must count as malformed and skip.
var malformedLines = []string{
	`{"ts":"%s","kind":"job.started","job_id":"j-truncated"`,
	`{"kind":"job.started","job_id":"j-no-ts","attempt":1}`,
	`{"ts":"%s","kind":"job.started","job_id":"j-attempt-zero","attempt":0}`,
	`{"ts":"%s","kind":"job.teleported","job_id":"j-unknown-kind"}`,
	`{"ts":"%s","kind":"effect","effect":"email.sent","effect_key":null}`,
	`not json at all`,
}

func (n *noiseWriter) line(l []byte, ts int64) error {
	n.stats.Lines++
	if n.noise == (Noise{Window: n.noise.Window}) {
		return n.w(l)
	}
	n.ts = ts
	n.block = append(n.block, append([]byte(nil), l...))
	if n.rng.Float64() < n.noise.Repeat {
		n.stats.Lines++
		n.stats.Repeated++
		n.block = append(n.block, append([]byte(nil), l...))
	}
	if n.rng.Float64() < n.noise.Malformed {
		m := malformedLines[n.rng.IntN(len(malformedLines))]
		m = strings.ReplaceAll(m, "%s", time.UnixMilli(ts).UTC().Format("2006-01-02T15:04:05.000Z"))
		n.stats.Lines++
		n.stats.Malformed++
		n.block = append(n.block, []byte(m))
	}
	if len(n.block) >= n.noise.Window {
		return n.flushBlock()
	}
	return nil
}

func (n *noiseWriter) flushBlock() error {
	for i := range n.block {
		if n.rng.Float64() < n.noise.Reorder {
			k := n.rng.IntN(len(n.block))
			n.block[i], n.block[k] = n.block[k], n.block[i]
		}
	}
	for _, l := range n.block {
		if err := n.w(l); err != nil {
			return err
		}
	}
	n.block = n.block[:0]
	return nil
}

func (n *noiseWriter) close() error { return n.flushBlock() }
