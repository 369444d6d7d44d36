package twicetype

// The handler safety scorecard: for each job type (and queue), what the
// audit observed of the four conditions every handler must survive, and
// whether the handler survived them. It heads every report.

// The conditions of the scorecard, in the order reports show them.
const (
	// CondRunTwice: the job ran more than once — a redelivery (a second
	// attempt) or a duplicate enqueue (the same key enqueued as several
	// jobs). Harm: an effect repeated (duplicate-effect).
	CondRunTwice = "run-twice"
	// CondRunLate: an attempt started past stale-execution's
	// max_start_delay, or behind a newer seq of its entity. Harm: its
	// effects were wrong by then (out-of-order, effect-after-terminal).
	CondRunLate = "run-late"
	// CondPartial: an attempt produced an effect and then crashed or
	// failed (the crash window). Harm: the retry repeated the effect.
	CondPartial = "partial"
	// CondOutOfOrder: an update reached an entity after a newer one
	// (a lower seq after a higher). Harm: the entity was left stale or
	// regressed (out-of-order).
	CondOutOfOrder = "out-of-order"
)

// Conditions lists the scorecard's conditions in report order.
var Conditions = []string{CondRunTwice, CondRunLate, CondPartial, CondOutOfOrder}

// The verdicts of one condition.
const (
	// VerdictUnsafe: the condition happened and did harm; Findings holds
	// the evidence.
	VerdictUnsafe = "unsafe"
	// VerdictSafe: the condition happened Exercised times and did no harm.
	VerdictSafe = "safe"
	// VerdictNotExercised: the audit never saw the condition happen to
	// this handler, so it says nothing about it.
	VerdictNotExercised = "not-exercised"
)

// HandlerScore is one row of the scorecard: one job type on one queue.
type HandlerScore struct {
	JobType string
	Queue   string
	// Jobs counts the distinct jobs of this type and queue.
	Jobs int64
	// Conditions holds one entry per element of Conditions, in order.
	Conditions []ConditionScore
}

// ConditionScore is what the audit saw of one condition for one handler.
type ConditionScore struct {
	// Condition is one of the Cond constants.
	Condition string
	// Verdict is one of the Verdict constants.
	Verdict string
	// Exercised counts the times the condition happened (jobs that ran
	// twice, late starts, crash windows, regressions).
	Exercised int64
	// Harmed counts how many of those did harm.
	Harmed int64
	// Findings lists the fingerprints of the findings that are the
	// evidence of harm, at most MaxScoreFindings; Harmed has the count.
	Findings []string
}

// MaxScoreFindings bounds ConditionScore.Findings.
const MaxScoreFindings = 20

// Impact adds up what the findings put at stake, from the amount,
// currency and customer attrs the configuration names (twice.yaml
// impact). Nil in a report when no impact paths are configured.
type Impact struct {
	// DuplicatedAmount is, per currency ("" when the effects carry none),
	// the sum of the amounts of repeated effects: for a key seen n times,
	// n-1 times its amount.
	DuplicatedAmount map[string]float64
	// Customers counts the distinct customers who got a duplicate effect.
	Customers int64
	// StaleEntities counts the entities out-of-order left stale (their
	// last event was not their highest seq).
	StaleEntities int64
}
