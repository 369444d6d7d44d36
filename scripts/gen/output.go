package main

import (
	"bufio"
	"math/rand/v2"
	"strconv"
	"time"
)

// Input faults, per line written.
const (
	reorderRate   = 0.01   // a line swaps places with the next one
	reorderMaxMs  = 5_000  // ... when their times differ by at most this
	repeatRate    = 0.001  // a line is delivered again a few lines later
	malformedRate = 0.0005 // a malformed line is inserted
	noIDRate      = 0.02   // an event has no id (identity by content)
	unixMsRate    = 0.10   // ts as integer Unix ms
	offsetRate    = 0.05   // ts as RFC 3339 with a +01:00 offset
)

// tagNewJob marks, on top of a fault tag, the first job.enqueued of a job.
const tagNewJob = 0x80

// output renders planned events as lines and injects the input faults:
// local reordering, repeated lines and malformed lines.
type output struct {
	w     *bufio.Writer
	r     *rand.Rand
	limit int64
	st    Stats
	err   error

	nextID  uint64
	lastJob int64 // a recent job id, for malformed lines

	buf     []byte
	pend    []byte // the line held back for a possible swap
	pendT   int64
	pendTag uint8
	hasPend bool

	repeats []repeat

	ts tsCache
}

type repeat struct {
	line  []byte
	after int
}

func newOutput(w *bufio.Writer, r *rand.Rand, limit int64) *output {
	return &output{w: w, r: r, limit: limit, nextID: 36 * 36 * 36 * 36 * 36 * 36, st: Stats{FirstMs: -1}}
}

// push takes the next event in time order.
func (o *output) push(e *event) {
	if e.jobID != 0 {
		o.lastJob = e.jobID
	}
	if e.kind == kEnqueued && e.flags&fReplay == 0 {
		e.tag |= tagNewJob
	}
	o.buf = o.format(o.buf[:0], e)
	if !o.hasPend {
		o.pend, o.pendT, o.pendTag, o.hasPend = append(o.pend[:0], o.buf...), e.t, e.tag, true
		return
	}
	if d := e.t - o.pendT; d > 0 && d <= reorderMaxMs && o.r.Float64() < reorderRate {
		o.st.Reorders++
		o.line(o.buf, e.t, e.tag)
		o.line(o.pend, o.pendT, o.pendTag)
		o.hasPend = false
		return
	}
	o.line(o.pend, o.pendT, o.pendTag)
	o.pend, o.pendT, o.pendTag = append(o.pend[:0], o.buf...), e.t, e.tag
}

// line writes one valid event line, then any due repeated copies, and
// maybe schedules a repeat or inserts a malformed line.
func (o *output) line(b []byte, t int64, tag uint8) {
	if !o.raw(b) {
		return
	}
	o.st.Events++
	if tag&tagNewJob != 0 {
		o.st.Jobs++
		tag &^= tagNewJob
	}
	o.st.Faults[tag]++
	if o.st.FirstMs < 0 || t < o.st.FirstMs {
		o.st.FirstMs = t
	}
	o.st.LastMs = max(o.st.LastMs, t)
	for i := 0; i < len(o.repeats); {
		if o.repeats[i].after--; o.repeats[i].after < 0 {
			if o.raw(o.repeats[i].line) {
				o.st.Repeated++
			}
			o.repeats = append(o.repeats[:i], o.repeats[i+1:]...)
			continue
		}
		i++
	}
	if o.r.Float64() < repeatRate {
		o.repeats = append(o.repeats, repeat{line: append([]byte(nil), b...), after: o.r.IntN(4)})
	}
	// Random, and one of each kind early, so that a small file has all.
	if o.r.Float64() < malformedRate || (o.st.Lines < 1000*numMal && o.st.Lines%1000 == 500) {
		k := int(o.st.Malformed() % numMal) // cycle, so every kind shows up early
		if o.raw(o.malformed(k, t)) {
			o.st.Mal[k]++
		}
	}
}

// raw writes b unless the line limit is reached.
func (o *output) raw(b []byte) bool {
	if o.st.Lines >= o.limit || o.err != nil {
		return false
	}
	if _, err := o.w.Write(b); err != nil {
		o.err = err
		return false
	}
	o.st.Lines++
	o.st.Bytes += int64(len(b))
	return true
}

func (o *output) appendID(b []byte) []byte {
	o.nextID++
	b = append(b, `"id":"e`...)
	b = strconv.AppendUint(b, o.nextID, 36)
	return append(b, `",`...)
}

func appendJobID(b []byte, id int64) []byte {
	b = append(b, `"j-`...)
	b = strconv.AppendInt(b, id, 10)
	return append(b, '"')
}

// malformed renders a line of malformed kind k near time t. Each has a
// fresh id, so no valid event shares it.
func (o *output) malformed(k int, t int64) []byte {
	b := make([]byte, 0, 160)
	b = append(b, '{')
	b = o.appendID(b)
	switch k {
	case malBadJSON: // cut off mid-line
		b = append(b, `"ts":`...)
		b = o.ts.appendRFC3339(b, t, false)
		b = append(b, `,"kind":"job.started","queue":"emails","job_id":"j-`...)
		return append(b, '\n')
	case malMissingTS:
		b = append(b, `"kind":"job.succeeded","job_id":`...)
		b = appendJobID(b, o.lastJob)
		b = append(b, `,"attempt":1`...)
	case malAttemptZero:
		b = append(b, `"ts":`...)
		b = o.ts.appendRFC3339(b, t, false)
		b = append(b, `,"kind":"job.started","queue":"payments","job_id":`...)
		b = appendJobID(b, o.lastJob)
		b = append(b, `,"attempt":0`...)
	case malUnknownKind:
		b = append(b, `"ts":`...)
		b = o.ts.appendRFC3339(b, t, false)
		b = append(b, `,"kind":"job.retried","job_id":`...)
		b = appendJobID(b, o.lastJob)
	case malNullField:
		b = append(b, `"ts":`...)
		b = o.ts.appendRFC3339(b, t, false)
		b = append(b, `,"kind":"job.succeeded","job_id":null,"attempt":1`...)
	case malWrongType:
		b = append(b, `"ts":`...)
		b = strconv.AppendInt(b, t, 10)
		b = append(b, `,"kind":"job.failed","job_id":`...)
		b = appendJobID(b, o.lastJob)
		b = append(b, `,"attempt":"2","retry":"yes"`...)
	}
	return append(b, '}', '\n')
}

// format renders e as one JSON line.
func (o *output) format(b []byte, e *event) []byte {
	b = append(b, '{')
	if o.r.Float64() >= noIDRate {
		b = o.appendID(b)
	}
	b = append(b, `"ts":`...)
	switch u := o.r.Float64(); {
	case u < unixMsRate:
		b = strconv.AppendInt(b, e.t, 10)
	case u < unixMsRate+offsetRate:
		b = o.ts.appendRFC3339(b, e.t, true)
	default:
		b = o.ts.appendRFC3339(b, e.t, false)
	}
	b = append(b, `,"kind":"`...)
	b = append(b, kindNames[e.kind]...)
	b = append(b, '"')
	f := e.flags
	if f&fQueue != 0 {
		b = append(b, `,"queue":"`...)
		b = append(b, queues[e.jt]...)
		b = append(b, '"')
	}
	if f&fJobType != 0 {
		b = append(b, `,"job_type":"`...)
		b = append(b, jobTypes[e.jt]...)
		b = append(b, '"')
	}
	if e.kind == kEffect {
		b = append(b, `,"effect":"`...)
		b = append(b, effectNames[e.effect]...)
		b = append(b, `","effect_key":"`...)
		b = append(b, effectPrefixes[e.effect]...)
		b = append(b, keyPrefixes[e.keyKind]...)
		b = strconv.AppendInt(b, e.key, 10)
		b = append(b, '"')
	}
	if f&fJobID != 0 {
		b = append(b, `,"job_id":`...)
		b = appendJobID(b, e.jobID)
	}
	if f&fAttempt != 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendInt(b, int64(e.attempt), 10)
	}
	if f&fKey != 0 {
		b = append(b, `,"key":"`...)
		b = append(b, keyPrefixes[e.keyKind]...)
		b = strconv.AppendInt(b, e.key, 10)
		b = append(b, '"')
	}
	if f&fEntity != 0 {
		b = append(b, `,"entity":"order:`...)
		b = strconv.AppendInt(b, e.entity, 10)
		b = append(b, '"')
	}
	if f&fSeq != 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendInt(b, int64(e.seq), 10)
	}
	if f&fTerminal != 0 {
		b = append(b, `,"terminal":true`...)
	}
	if f&fRetry != 0 {
		if f&fRetryTrue != 0 {
			b = append(b, `,"retry":true`...)
		} else {
			b = append(b, `,"retry":false`...)
		}
	}
	if f&fError != 0 {
		b = append(b, `,"error":"`...)
		b = append(b, errorNames[e.status]...)
		b = append(b, '"')
	}
	if f&fStatus != 0 {
		b = append(b, `,"attrs":{"status":"`...)
		b = append(b, statusNames[e.status]...)
		b = append(b, `"}`...)
	}
	return append(b, '}', '\n')
}

// tsCache renders RFC 3339 times with millisecond precision, caching the
// date of the current day.
type tsCache struct {
	day  int64 // Unix day of date, -1 when empty
	date [11]byte
	ok   bool
}

func (c *tsCache) appendRFC3339(b []byte, ms int64, plusOne bool) []byte {
	if plusOne {
		ms += 3_600_000
	}
	day := ms / 86_400_000
	if !c.ok || c.day != day {
		time.UnixMilli(day*86_400_000).UTC().AppendFormat(c.date[:0], "2006-01-02T")
		c.day, c.ok = day, true
	}
	b = append(b, '"')
	b = append(b, c.date[:]...)
	rem := ms - day*86_400_000
	b = append2(b, rem/3_600_000)
	b = append(b, ':')
	b = append2(b, rem/60_000%60)
	b = append(b, ':')
	b = append2(b, rem/1000%60)
	b = append(b, '.')
	m := rem % 1000
	b = append(b, byte('0'+m/100), byte('0'+m/10%10), byte('0'+m%10))
	if plusOne {
		return append(b, `+01:00"`...)
	}
	return append(b, `Z"`...)
}

func append2(b []byte, v int64) []byte {
	return append(b, byte('0'+v/10), byte('0'+v%10))
}
