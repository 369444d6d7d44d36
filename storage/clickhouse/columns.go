package clickhouse

import (
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/valyala/fastjson"

	"github.com/twicehq/twice/twicetype"
)

const eventColumnList = "identity, pos, ts, kind, id, source, line, queue, job_type, job_id, key, " +
	"effect, effect_key, entity, error, attempt, seq, terminal, retry, attrs, attrs_flat"

// eventColumns buffers events column by column: clickhouse-go appends a
// whole column at once, far faster than row by row.
type eventColumns struct {
	identity, pos                                 []uint64
	ts                                            []time.Time
	kind                                          []string
	id, source                                    []string
	line                                          []int64
	queue, jobType, jobID, key, effect, effectKey []string
	entity, errs, attrs                           []string
	attempt, seq                                  []*int64
	terminal, retry                               []*bool
	flat                                          []map[string]string
}

func (c *eventColumns) len() int { return len(c.pos) }

// grow gives every column room for n events, so that filling a batch
// copies nothing.
func (c *eventColumns) grow(n int) {
	c.identity, c.pos = make([]uint64, 0, n), make([]uint64, 0, n)
	c.ts = make([]time.Time, 0, n)
	c.line = make([]int64, 0, n)
	for _, s := range []*[]string{&c.kind, &c.id, &c.source, &c.queue, &c.jobType, &c.jobID, &c.key,
		&c.effect, &c.effectKey, &c.entity, &c.errs, &c.attrs} {
		*s = make([]string, 0, n)
	}
	c.attempt, c.seq = make([]*int64, 0, n), make([]*int64, 0, n)
	c.terminal, c.retry = make([]*bool, 0, n), make([]*bool, 0, n)
	c.flat = make([]map[string]string, 0, n)
}

func (c *eventColumns) add(e *twicetype.Event, pos uint64, p *fastjson.Parser) {
	c.identity = append(c.identity, e.Identity)
	c.pos = append(c.pos, pos)
	c.ts = append(c.ts, time.Unix(0, e.Time).UTC())
	c.kind = append(c.kind, e.Kind.String())
	c.id = append(c.id, e.ID)
	c.source = append(c.source, e.Source)
	c.line = append(c.line, e.Line)
	c.queue = append(c.queue, e.Queue)
	c.jobType = append(c.jobType, e.JobType)
	c.jobID = append(c.jobID, e.JobID)
	c.key = append(c.key, e.Key)
	c.effect = append(c.effect, e.Effect)
	c.effectKey = append(c.effectKey, e.EffectKey)
	c.entity = append(c.entity, e.Entity)
	c.errs = append(c.errs, e.Error)
	c.attempt = append(c.attempt, optInt(e.HasAttempt, e.Attempt))
	c.seq = append(c.seq, optInt(e.HasSeq, e.Seq))
	c.terminal = append(c.terminal, optBool(e.HasTerminal, e.Terminal))
	c.retry = append(c.retry, optBool(e.HasRetry, e.Retry))
	c.attrs = append(c.attrs, string(e.Attrs))
	m := flattenAttrs(p, e.Attrs)
	if m == nil {
		m = noAttrs // only read: clickhouse-go encodes it
	}
	c.flat = append(c.flat, m)
}

var noAttrs = map[string]string{}

func optInt(ok bool, v int64) *int64 {
	if !ok {
		return nil
	}
	return &v
}

func optBool(ok bool, v bool) *bool {
	if !ok {
		return nil
	}
	return &v
}

func (c *eventColumns) appendTo(b driver.Batch) error {
	cols := []any{
		c.identity, c.pos, c.ts, c.kind, c.id, c.source, c.line, c.queue, c.jobType, c.jobID, c.key,
		c.effect, c.effectKey, c.entity, c.errs, c.attempt, c.seq, c.terminal, c.retry, c.attrs, c.flat,
	}
	for i, col := range cols {
		if err := b.Column(i).Append(col); err != nil {
			return err
		}
	}
	return nil
}

func (c *eventColumns) reset() {
	*c = eventColumns{}
}
