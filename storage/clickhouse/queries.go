package clickhouse

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The audit's SQL. Every query starts from the same CTEs:
//
//	rep  the positions of repeated copies: of the rows with one identity,
//	     all but the lowest position (spec §1: the first copy counts)
//	ev   the counted events of the range, with t (Unix ns), o (the order
//	     of spec §2: by ts, ties by input position, as one Int128) and ref
//	     (how findings name the event)
//	jf   per job_id, the first value of each job field on its job.* events
//	     and the o at which it was set (the engine's Job record). Findings
//	     use the first values whichever event carried them (spec §1): the
//	     engine applies a field that arrives late as if known from the
//	     job's first event. Only effect-before-failure's template linking
//	     looks at when a key rendered (the jobs rendering it when the
//	     effect was seen).
//	rk   per job and expectation rule, the rendered effect_key and the o at
//	     which it rendered (the engine's link index)
//
// ClickHouse inlines a CTE where it is used, so nothing is materialized
// and every query reads only the columns it needs.
const (
	jobKinds   = "toInt8(kind) <= 6"
	twoTo64    = "toInt128('18446744073709551616')"
	rowsBefore = "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
	rowsUpTo   = "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
)

type querySet struct {
	events string
	rangeW string // WHERE condition on ts for the range
	refSQL string
	rules  []ruleSQL
	// evTable and jfTable, when set, hold ev and jf, computed once
	// (materialize.go): the CTEs read them instead.
	evTable, jfTable string
}

type ruleSQL struct {
	jobTypeName             string
	effect, value, cond, at string
	within                  time.Duration
	count                   int
}

func newQuerySet(events string, since, until int64, hasSince, hasUntil, redactID bool, rules []ruleSQL) *querySet {
	var conds []string
	if hasSince {
		conds = append(conds, fmt.Sprintf("ts >= fromUnixTimestamp64Nano(toInt64(%d), 'UTC')", since))
	}
	if hasUntil {
		conds = append(conds, fmt.Sprintf("ts < fromUnixTimestamp64Nano(toInt64(%d), 'UTC')", until))
	}
	if len(conds) == 0 {
		conds = append(conds, "1")
	}
	id := "id"
	if redactID {
		id = "concat('redacted:', lower(hex(substring(SHA256(id), 1, 8))))"
	}
	return &querySet{
		events: events,
		rangeW: strings.Join(conds, " AND "),
		refSQL: "if(id != '', " + id + ", concat(source, ':', toString(line)))",
		rules:  rules,
	}
}

// with returns the common CTEs followed by more, comma separated.
func (q *querySet) with(more ...string) string {
	ctes := []string{
		fmt.Sprintf(`rep AS (SELECT arrayJoin(arrayPopFront(arraySort(groupArray(pos)))) AS pos FROM %s WHERE %s GROUP BY identity HAVING count() > 1)`,
			q.events, q.rangeW),
		fmt.Sprintf(`ev AS (SELECT toUnixTimestamp64Nano(ts) AS t, toInt128(t) * %s + toInt128(pos) AS o, kind, queue, job_type, job_id, key, effect,
    effect_key, entity, attempt, seq, terminal, attrs, attrs_flat, %s AS ref
  FROM %s WHERE %s AND pos NOT IN (SELECT pos FROM rep))`, twoTo64, q.refSQL, q.events, q.rangeW),
		`jf AS (SELECT job_id, min(o) AS first_o, argMin(t, o) AS first_t,
    argMinIf(job_type, o, ` + jobKinds + ` AND job_type != '') AS jtype, minIf(o, ` + jobKinds + ` AND job_type != '') AS jtype_o,
    argMinIf(queue, o, ` + jobKinds + ` AND queue != '') AS jqueue, minIf(o, ` + jobKinds + ` AND queue != '') AS jqueue_o,
    argMinIf(key, o, ` + jobKinds + ` AND key != '') AS jkey, minIf(o, ` + jobKinds + ` AND key != '') AS jkey_o,
    argMinIf(entity, o, ` + jobKinds + ` AND entity != '') AS jentity, minIf(o, ` + jobKinds + ` AND entity != '') AS jentity_o,
    argMinIf(attrs_flat, o, ` + jobKinds + ` AND attrs != '') AS jattrs, minIf(o, ` + jobKinds + ` AND attrs != '') AS jattrs_o
  FROM ev WHERE job_id != '' GROUP BY job_id)`,
		q.rkCTE(),
	}
	if q.evTable != "" {
		ctes = []string{"ev AS (SELECT * FROM " + q.evTable + ")", "jf AS (SELECT * FROM " + q.jfTable + ")", q.rkCTE()}
	}
	return "WITH\n" + strings.Join(append(ctes, more...), ",\n")
}

func (q *querySet) rkCTE() string {
	if len(q.rules) == 0 {
		return `rk AS (SELECT '' AS job_id, '' AS reffect, '' AS rkey, toInt128(0) AS render_o, toUInt32(0) AS rule WHERE 0)`
	}
	var tuples []string
	for i, r := range q.rules {
		tuples = append(tuples, fmt.Sprintf("tuple(%s, if(jtype = %s AND %s, %s, ''), toInt128(%s), toUInt32(%d))",
			quote(r.effect), quote(r.jobType()), r.cond, r.value, r.at, i))
	}
	return `rk AS (SELECT job_id, r.1 AS reffect, r.2 AS rkey, r.3 AS render_o, r.4 AS rule FROM jf ARRAY JOIN [` +
		strings.Join(tuples, ", ") + `] AS r WHERE rkey != '')`
}

// jobType is carried in cond's companion; see ruleSQL construction.
func (r ruleSQL) jobType() string { return r.jobTypeName }

// endSQL is the end of input: the largest ts among counted events.
const endSQL = "(SELECT max(t) FROM ev)"

// The dead-letter bookkeeping of the engine (Set.afterObserve): g numbers
// the job's enqueues and successes so far; the first job.dead of group g
// is the job's deadOrd until the next enqueue or success.
const jrCTEs = `jr AS (SELECT job_id, o, t, ref, kind,
    toInt64(sum(toUInt64(kind IN ('job.enqueued', 'job.succeeded'))) OVER (PARTITION BY job_id ORDER BY o ` + rowsUpTo + `)) AS g
  FROM ev WHERE job_id != '' AND kind IN ('job.enqueued', 'job.succeeded', 'job.dead')),
deads AS (SELECT job_id, g, min(o) AS d, argMin(t, o) AS dt, argMin(ref, o) AS dref
  FROM jr WHERE kind = 'job.dead' GROUP BY job_id, g)`

// The replays of the engine (Job.replays): for each job.enqueued that
// followed a job.dead, the latest job.dead since the job's enqueue before
// it (a success in between does not cancel the replay). g numbers the
// job's enqueues so far.
const rpCTEs = `rj AS (SELECT job_id, o, kind,
    toInt64(sum(toUInt64(kind = 'job.enqueued')) OVER (PARTITION BY job_id ORDER BY o ` + rowsUpTo + `)) AS g
  FROM ev WHERE job_id != '' AND kind IN ('job.enqueued', 'job.dead')),
rp AS (SELECT e.job_id AS job_id, d.dead_o AS dead_o, e.o AS enq_o
  FROM (SELECT job_id, o, g FROM rj WHERE kind = 'job.enqueued') AS e
  INNER JOIN (SELECT job_id, g, max(o) AS dead_o FROM rj WHERE kind = 'job.dead' GROUP BY job_id, g) AS d
  ON d.job_id = e.job_id AND d.g = e.g - 1)`

func (q *querySet) duplicateEffect(maxPerKey int) string {
	return q.with(rpCTEs,
		fmt.Sprintf(`de AS (SELECT o, t, ref, effect, effect_key, job_id FROM ev
  WHERE kind = 'effect' AND effect_key IN (SELECT effect_key FROM ev WHERE kind = 'effect' GROUP BY effect_key HAVING count() > %d))`, maxPerKey),
		`links AS (SELECT effect_key, job_id AS lj, o AS eo, toInt128(0) AS ro FROM de WHERE job_id != ''
  UNION ALL
  SELECT de.effect_key AS effect_key, rk.job_id AS lj, de.o AS eo, rk.render_o AS ro
  FROM de INNER JOIN rk ON rk.rkey = de.effect_key AND rk.reffect = de.effect WHERE de.job_id = '')`,
		`spans AS (SELECT effect_key, lj, min(eo) AS f, max(eo) AS l, argMin(ro, eo) AS ro FROM links GROUP BY effect_key, lj)`,
		// replay: a linked job went dead and was enqueued again, both
		// between the first and the last effect of the key that link to
		// a job (spec §2: between two of the effects).
		`kspan AS (SELECT effect_key, min(eo) AS kf, max(eo) AS kl FROM links GROUP BY effect_key)`,
		`replayed AS (SELECT DISTINCT s.effect_key AS effect_key FROM spans AS s
  INNER JOIN kspan AS k ON k.effect_key = s.effect_key INNER JOIN rp ON rp.job_id = s.lj
  WHERE k.kf < rp.dead_o AND rp.enq_o < k.kl)`,
		`agg AS (SELECT effect_key, count() AS n, min(t) AS ft, max(t) AS lt,
    arrayMap(x -> x.2, arraySort(groupArray((o, ref)))) AS refs, argMin(effect, o) AS eff0
  FROM de GROUP BY effect_key)`,
		`jl AS (SELECT effect_key, arrayMap(x -> x.3, arraySort(groupArray((f, ro, lj)))) AS jobs, jobs[1] AS j1 FROM spans GROUP BY effect_key)`,
	) + `
SELECT a.effect_key, toInt64(a.n), a.ft, a.lt, a.refs, a.eff0, jl.jobs, toUInt8(a.effect_key IN (SELECT effect_key FROM replayed)),
    jf.jtype, jf.jqueue
FROM agg AS a LEFT JOIN jl ON jl.effect_key = a.effect_key LEFT JOIN jf ON jf.job_id = jl.j1`
}

// The first success of each job sets its expectations (and is the success
// duplicate-execution measures from).
const succCTE = `succ AS (SELECT job_id, min(o) AS so, argMin(t, o) AS st, argMin(ref, o) AS sref
  FROM ev WHERE kind = 'job.succeeded' GROUP BY job_id)`

func (q *querySet) withins() string {
	var ws []string
	for _, r := range q.rules {
		ws = append(ws, strconv.FormatInt(int64(r.within), 10))
	}
	return "[" + strings.Join(ws, ", ") + "]"
}

func (q *querySet) counts() string {
	var cs []string
	for _, r := range q.rules {
		cs = append(cs, strconv.Itoa(r.count))
	}
	return "[" + strings.Join(cs, ", ") + "]"
}

// xpCTE: the expectations set: a succeeded job whose key a rule renders,
// with the fields of any of its events (a key that arrives after the
// success counts from the success).
func (q *querySet) xpCTE() string {
	return `xp AS (SELECT rk.job_id AS job_id, rk.rule AS rule, rk.rkey AS rkey, rk.reffect AS reffect, s.st AS st, s.sref AS sref,
    s.st + toInt64(arrayElement(` + q.withins() + `, rk.rule + 1)) AS d
  FROM rk INNER JOIN succ AS s ON s.job_id = rk.job_id)`
}

func (q *querySet) missingEffect() string {
	return q.with(succCTE, q.xpCTE()) + `
SELECT x.job_id, x.rule, x.rkey, x.st, x.sref, x.d, any(jf.jtype), any(jf.jqueue),
    arrayMap(y -> y.2, arraySort(groupArrayIf((e.o, e.ref), e.effect_key = x.rkey AND e.t <= x.d))) AS seen
FROM (SELECT * FROM xp WHERE d <= ` + endSQL + `) AS x
LEFT JOIN (SELECT o, t, ref, effect, effect_key FROM ev WHERE kind = 'effect') AS e ON e.effect_key = x.rkey AND e.effect = x.reffect
LEFT JOIN jf ON jf.job_id = x.job_id
GROUP BY x.job_id, x.rule, x.rkey, x.st, x.sref, x.d
HAVING length(seen) < arrayElement(` + q.counts() + `, x.rule + 1)`
}

// effectBeforeFailure runs the engine's per-job state machine
// (detectors/effect_before_failure.go) with arrayFold over each job's
// starts, ends and linked effects in order. The state is (current
// attempt, running, the attempts that ended, open attempts with effects,
// flagged attempts). An effect carrying an attempt that ended or was
// superseded is too late; a success closes its attempt's effects, a
// failure or death flags them, a discard leaves them open for another
// start to flag.
func (q *querySet) effectBeforeFailure() string {
	const (
		naStart = "if(x.5, x.4, if(acc.1 < 9223372036854775807, acc.1 + 1, acc.1))"
		naEnd   = "if(x.5, x.4, acc.1)"
		isStart = "x.3 = 'job.started'"
		isEff   = "x.3 = 'effect'"
		isEnd   = "x.3 NOT IN ('job.started', 'effect')"
		effA    = "if(x.5, x.4, acc.1)"
		effOK   = "if(x.5, NOT (x.4 < acc.1 OR has(acc.3, x.4)), acc.2 = 1)"
	)
	flag := func(cond string) string {
		return "arrayMap(p -> tuple(p.1, p.2, p.3, x.1, x.2, x.6, x.3), arrayFilter(p -> " + cond + ", acc.4))"
	}
	fold := `arrayFold((acc, x) -> tuple(
      if(` + isStart + `, ` + naStart + `, acc.1),
      toUInt8(multiIf(` + isStart + `, 1, ` + isEnd + ` AND ` + naEnd + ` = acc.1, 0, acc.2)),
      if(` + isEnd + `, arrayPushBack(acc.3, ` + naEnd + `), acc.3),
      multiIf(` + isStart + `, arrayFilter(p -> p.1 = ` + naStart + `, acc.4),
        ` + isEff + ` AND ` + effOK + `, if(has(arrayMap(p -> p.1, acc.4), ` + effA + `),
            arrayMap(p -> if(p.1 = ` + effA + `, tuple(p.1, arrayPushBack(p.2, x.6), p.3), p), acc.4),
            arrayPushBack(acc.4, tuple(` + effA + `, [x.6], x.2))),
        ` + isEnd + ` AND x.3 != 'job.discarded', arrayFilter(p -> p.1 != ` + naEnd + `, acc.4),
        acc.4),
      multiIf(` + isStart + `, arrayConcat(acc.5, ` + flag("p.1 != "+naStart) + `),
        x.3 IN ('job.failed', 'job.dead'), arrayConcat(acc.5, ` + flag("p.1 = "+naEnd) + `),
        acc.5)
    ), evs, tuple(toInt64(0), toUInt8(0), CAST([], 'Array(Int64)'),
      CAST([], 'Array(Tuple(Int64, Array(String), Int64))'),
      CAST([], 'Array(Tuple(Int64, Array(String), Int64, Int128, Int64, String, String))')))`
	return q.with(
		`tl AS (SELECT e.o AS o, any(rk.job_id) AS job_id
  FROM (SELECT o, effect, effect_key FROM ev WHERE kind = 'effect' AND job_id = '') AS e
  INNER JOIN rk ON rk.rkey = e.effect_key AND rk.reffect = e.effect
  WHERE rk.render_o < e.o GROUP BY e.o HAVING uniqExact(rk.job_id) = 1)`,
		`cand AS (SELECT job_id FROM ev WHERE kind = 'effect' AND job_id != '' UNION DISTINCT SELECT job_id FROM tl)`,
		`seqrows AS (SELECT job_id, o, t, toString(kind) AS k, ifNull(attempt, 0) AS a, toUInt8(isNotNull(attempt)) AS ha, ref FROM ev
  WHERE job_id IN (SELECT job_id FROM cand) AND kind IN ('job.started', 'job.succeeded', 'job.failed', 'job.dead', 'job.discarded', 'effect')
  UNION ALL
  SELECT tl.job_id AS job_id, e.o AS o, e.t AS t, 'effect' AS k, ifNull(e.attempt, 0) AS a, toUInt8(isNotNull(e.attempt)) AS ha, e.ref AS ref
  FROM ev AS e INNER JOIN tl ON tl.o = e.o WHERE e.kind = 'effect' AND e.job_id = '')`,
		`folded AS (SELECT job_id, `+fold+`.5 AS flagged
  FROM (SELECT job_id, arraySort(groupArray(tuple(o, t, k, a, ha, ref))) AS evs FROM seqrows GROUP BY job_id))`,
	) + `
SELECT f.job_id, fl.1, fl.2, fl.3, toString(fl.4), fl.5, fl.6, fl.7, jf.jtype, jf.jqueue
FROM folded AS f ARRAY JOIN f.flagged AS fl
LEFT JOIN jf ON jf.job_id = f.job_id`
}

func (q *querySet) duplicateExecution() string {
	return q.with(succCTE) + `
SELECT e.job_id, toString(e.o), e.t, e.ref, e.attempt, s.st, s.sref, jf.jtype, jf.jqueue
FROM (SELECT job_id, o, t, ref, attempt FROM ev WHERE kind = 'job.started') AS e
INNER JOIN succ AS s ON s.job_id = e.job_id
LEFT JOIN jf ON jf.job_id = e.job_id
WHERE e.o > s.so`
}

func (q *querySet) outOfOrder() string {
	return q.with(
		`es AS (SELECT entity, o, t, ref, sq AS seq, job_id,
    max(sq) OVER (PARTITION BY entity ORDER BY o `+rowsBefore+`) AS prevmax,
    count() OVER (PARTITION BY entity ORDER BY o `+rowsBefore+`) AS nprev
  FROM (SELECT entity, o, t, ref, assumeNotNull(seq) AS sq, job_id FROM ev
    WHERE kind IN ('effect', 'state') AND entity != '' AND isNotNull(seq)))`,
		`ent AS (SELECT entity, max(seq) AS hi, argMax(seq, o) AS last FROM es GROUP BY entity)`,
		`reg AS (SELECT entity, toInt64(count()) AS n, min(t) AS ft, max(t) AS lt,
    arraySort(groupArray(tuple(o, ref, seq, prevmax, job_id))) AS rs, arrayFilter(j -> j != '', arrayMap(x -> x.5, rs))[1] AS j1
  FROM es WHERE nprev > 0 AND seq < prevmax GROUP BY entity)`,
	) + `
SELECT reg.entity, reg.n, reg.ft, reg.lt, arrayMap(x -> x.2, arraySlice(reg.rs, 1, 1000)),
    arrayMap(x -> x.3, arraySlice(reg.rs, 1, 1000)), arrayMap(x -> x.4, arraySlice(reg.rs, 1, 1000)),
    arrayDistinct(arrayFilter(j -> j != '', arrayMap(x -> x.5, reg.rs))), ent.hi, ent.last, jf.jtype, jf.jqueue
FROM reg INNER JOIN ent ON ent.entity = reg.entity LEFT JOIN jf ON jf.job_id = reg.j1`
}

func (q *querySet) staleExecution(maxDelay time.Duration) string {
	return q.with(
		`js AS (SELECT job_id, o, t, ref, kind, attempt,
    toInt64(sum(toUInt64(kind = 'job.started')) OVER w) AS ns,
    countIf(kind = 'job.enqueued' AND isNotNull(seq)) OVER w AS nseq,
    argMaxIf(ifNull(seq, 0), o, kind = 'job.enqueued' AND isNotNull(seq)) OVER w AS eseq
  FROM ev WHERE job_id != '' AND kind IN ('job.enqueued', 'job.started')
  WINDOW w AS (PARTITION BY job_id ORDER BY o `+rowsUpTo+`))`,
		`fe AS (SELECT job_id, ns, argMin(t, o) AS et, argMin(ref, o) AS eref FROM js WHERE kind = 'job.enqueued' GROUP BY job_id, ns)`,
		`esm AS (SELECT entity, o, max(sq) OVER (PARTITION BY entity ORDER BY o `+rowsUpTo+`) AS runmax
  FROM (SELECT entity, o, assumeNotNull(seq) AS sq FROM ev WHERE kind IN ('effect', 'state') AND entity != '' AND isNotNull(seq)))`,
		`st AS (SELECT s.job_id AS job_id, s.o AS o, s.t AS t, s.ref AS ref, s.attempt AS attempt, s.nseq AS nseq, s.eseq AS eseq,
    fe.job_id != '' AS waiting, fe.et AS et, fe.eref AS eref,
    jf.jentity AS ent, jf.jtype AS jtype, jf.jqueue AS jqueue
  FROM (SELECT * FROM js WHERE kind = 'job.started') AS s
  LEFT JOIN fe ON fe.job_id = s.job_id AND fe.ns = s.ns - 1
  LEFT JOIN jf ON jf.job_id = s.job_id)`,
	) + `
SELECT st.job_id, toString(st.o), st.t, st.ref, st.attempt, st.waiting, st.et, st.eref,
    st.nseq > 0 AND st.ent != '' AND m.entity != '' AND m.runmax > st.eseq AS stale, st.ent, st.eseq, m.runmax, st.jtype, st.jqueue
FROM st ASOF LEFT JOIN esm AS m ON m.entity = st.ent AND st.o > m.o
WHERE (st.waiting AND st.t - st.et > ` + strconv.FormatInt(int64(maxDelay), 10) + `) OR stale`
}

func (q *querySet) effectAfterTerminal() string {
	return q.with(
		`term AS (SELECT entity, min(o) AS to_, argMin(t, o) AS tt, argMin(ref, o) AS tref
  FROM ev WHERE kind = 'state' AND terminal = true AND entity != '' GROUP BY entity)`,
	) + `
SELECT e.effect_key, toString(e.o), e.t, e.ref, e.effect, e.job_id, e.entity, term.tt, term.tref, jf.jtype, jf.jqueue
FROM (SELECT o, t, ref, effect, effect_key, job_id, entity FROM ev WHERE kind = 'effect' AND entity != '') AS e
INNER JOIN term ON term.entity = e.entity
LEFT JOIN jf ON jf.job_id = e.job_id
WHERE e.o > term.to_`
}

// lostCTEs: the engine arms a job's lost timer on job.enqueued, started
// and failed (failed only once the job was seen enqueued or started) and
// disarms it on succeeded, dead and discarded. A timer is a finding when
// the job's next such event comes strictly after the deadline, or there
// is none and the deadline is at or before the end; pending when there
// is none and the deadline is after the end.
func lostCTEs(lostAfter time.Duration) string {
	return fmt.Sprintf(`lj AS (SELECT job_id, o, t, ref, kind,
    countIf(kind IN ('job.enqueued', 'job.started')) OVER (PARTITION BY job_id ORDER BY o `+rowsUpTo+`) AS seen_n
  FROM ev WHERE job_id != '' AND `+jobKinds+`),
rel AS (SELECT job_id, o, t, ref, kind,
    countIf(kind IN ('job.started', 'job.failed')) OVER (PARTITION BY job_id ORDER BY o `+rowsUpTo+`) AS started_n,
    leadInFrame(t) OVER w3 AS next_t, leadInFrame(toUInt8(1)) OVER w3 AS has_next
  FROM lj WHERE NOT (kind = 'job.failed' AND seen_n = 0)
  WINDOW w3 AS (PARTITION BY job_id ORDER BY o ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING)),
arm AS (SELECT job_id, o, t, ref, kind, started_n, next_t, has_next, t + %d AS d
  FROM rel WHERE kind IN ('job.enqueued', 'job.started', 'job.failed'))`, int64(lostAfter))
}

func (q *querySet) lostJob(lostAfter time.Duration) string {
	return q.with(lostCTEs(lostAfter)) + `
SELECT a.job_id, toString(a.o), a.t, a.ref, toString(a.kind), a.started_n > 0, a.d, jf.first_t,
    jf.jtype, jf.jqueue
FROM arm AS a LEFT JOIN jf ON jf.job_id = a.job_id
WHERE (a.has_next = 1 AND a.next_t > a.d) OR (a.has_next = 0 AND a.d <= ` + endSQL + `)`
}

func (q *querySet) retryStorm(window time.Duration, minAttempts int, amp float64) string {
	w := int64(window)
	return q.with(
		fmt.Sprintf(`sr AS (SELECT e.job_id AS job_id, e.o AS o, e.ref AS ref,
    jf.jqueue AS q0, jf.jtype AS jt,
    intDiv(e.t, %d) * %d - if(e.t < 0 AND e.t %% %d != 0, %d, 0) AS ws
  FROM (SELECT job_id, o, t, ref FROM ev WHERE kind = 'job.started') AS e LEFT JOIN jf ON jf.job_id = e.job_id)`, w, w, w, w),
	) + fmt.Sprintf(`
SELECT if(q0 = '', '(none)', q0) AS q, ws, toInt64(count()) AS n, toInt64(uniqExact(job_id)) AS nj,
    arrayMap(x -> x.2, arraySlice(arraySort(groupArray(tuple(o, ref))), 1, 1000)),
    arrayDistinct(arrayMap(x -> x.2, arraySort(groupArray(tuple(o, job_id))))),
    arraySort(groupArray(tuple(o, jt)))[1].2
FROM sr GROUP BY q, ws
HAVING n >= %d AND n / nj >= %s`, minAttempts, strconv.FormatFloat(amp, 'g', -1, 64))
}

func (q *querySet) deadLetter() string {
	return q.with(jrCTEs,
		`dl AS (SELECT d.job_id AS job_id, d.d AS dead_o, d.dt AS dt, d.dref AS dref
  FROM deads AS d INNER JOIN (SELECT job_id, max(g) AS gmax FROM jr GROUP BY job_id) AS l ON l.job_id = d.job_id AND l.gmax = d.g)`,
		`dq AS (SELECT dl.job_id AS job_id, dl.dt AS dt, dl.dref AS dref, jf.first_o AS first_o,
    jf.jqueue AS q0, jf.jtype AS jt
  FROM dl LEFT JOIN jf ON jf.job_id = dl.job_id)`,
	) + `
SELECT if(q0 = '', '(none)', q0) AS q, toInt64(count()), min(dt), max(dt),
    arrayMap(x -> x.2, arraySlice(arraySort(groupArray(tuple(first_o, job_id, dref))), 1, 1000)),
    arrayMap(x -> x.3, arraySlice(arraySort(groupArray(tuple(first_o, job_id, dref))), 1, 1000)),
    groupArray(intDiv(dt, 3600000000000) - if(dt < 0 AND dt % 3600000000000 != 0, 1, 0)),
    arraySort(groupArray(tuple(first_o, job_id, jt)))[1].3
FROM dq GROUP BY q`
}

// coverage counts, per rule, the jobs of its job_type and those its
// template renders for (Summary.Rules).
func (q *querySet) coverage() string {
	var jobs, rendered []string
	for _, r := range q.rules {
		jobs = append(jobs, "toInt64(countIf(jtype = "+quote(r.jobType())+"))")
		rendered = append(rendered, "toInt64(countIf(jtype = "+quote(r.jobType())+" AND "+r.cond+" AND "+r.value+" != ''))")
	}
	return q.with() + "\nSELECT [" + strings.Join(jobs, ", ") + "], [" + strings.Join(rendered, ", ") + "] FROM jf"
}

func (q *querySet) summary() string {
	return q.with() + fmt.Sprintf(`
SELECT (SELECT count() FROM %s WHERE %s), count(), countIf(kind = 'effect'), uniqExactIf(job_id, job_id != ''), min(t), max(t)
FROM ev`, q.events, q.rangeW)
}

func (q *querySet) pending(missing, lost bool, lostAfter time.Duration) string {
	var parts, ctes []string
	if missing && len(q.rules) > 0 {
		ctes = append(ctes, succCTE, q.xpCTE())
		parts = append(parts, "SELECT job_id FROM xp WHERE d > "+endSQL)
	}
	if lost {
		ctes = append(ctes, lostCTEs(lostAfter))
		parts = append(parts, "SELECT job_id FROM arm WHERE has_next = 0 AND d > "+endSQL)
	}
	if len(parts) == 0 {
		return ""
	}
	return q.with(ctes...) + "\nSELECT toInt64(uniqExact(job_id)) FROM (" + strings.Join(parts, " UNION ALL ") + ")"
}
