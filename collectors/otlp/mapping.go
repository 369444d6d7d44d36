package otlp

import (
	"cmp"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"github.com/twicehq/twice/collectors/jsonl"
	"math"
	"path"
	"slices"
	"strconv"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/twicetype"
)

// Attributes of the OpenTelemetry semantic conventions, and twice's own
// fixed ones, that the mapping reads.
const (
	attrMessageID   = "messaging.message.id"
	attrDestination = "messaging.destination.name"
	attrOperation   = "messaging.operation.type"
	attrOperationV1 = "messaging.operation" // before semantic conventions 1.26
	attrKey         = "twice.key"
	attrEntity      = "twice.entity"
)

// maxAncestors bounds the walk from an effect span up to its job span.
const maxAncestors = 64

// Outcomes of a span, the label values of twice_otlp_spans_total.
const (
	// OutcomeEffect: the span became an effect.
	OutcomeEffect = "effect"
	// OutcomeJob: the span (a consumer span) became job events.
	OutcomeJob = "job"
	// OutcomeFailed: an effect span with status ERROR: the call failed,
	// so no effect happened; nothing is recorded.
	OutcomeFailed = "failed_effect"
	// OutcomeIgnored: neither an effect nor a job span.
	OutcomeIgnored = "ignored"
	// OutcomeMalformed: an effect or job span twice cannot use (no key,
	// no job id, no time, bad ids); recorded as malformed with the
	// reason.
	OutcomeMalformed = "malformed"
)

// Outcomes lists the outcomes in the order docs list them.
var Outcomes = []string{OutcomeEffect, OutcomeJob, OutcomeFailed, OutcomeIgnored, OutcomeMalformed}

// mapper turns the spans of one export request into records.
type mapper struct {
	source string
	cfg    *Config
}

// Mapped is what one export request holds for twice.
type Mapped struct {
	// Records are the events and malformed records to submit: the
	// events in event-time order (a batch holds spans in the order they
	// ended, each job span's start event after the effects under it),
	// ties in span order, then the malformed records.
	Records []sources.Record
	// Spans counts the spans by outcome.
	Spans map[string]int
	// Rejected counts the spans rejected (malformed), and FirstError is
	// the first reason, for the response's partial_success.
	Rejected   int64
	FirstError string
}

// spanRef is a span of the request with its resource.
type spanRef struct {
	span     *tracepb.Span
	resource []*commonpb.KeyValue
}

// spanID identifies a span within a request: trace id and span id bytes.
func spanID(traceID, id []byte) string { return string(traceID) + string(id) }

// Map turns an export request into records: effects, job events and
// malformed records, with the spans counted by outcome.
func (mp *mapper) Map(req *coltracepb.ExportTraceServiceRequest) Mapped {
	out := Mapped{Spans: map[string]int{}}
	index := map[string]spanRef{}
	var all []spanRef
	for _, rs := range req.GetResourceSpans() {
		res := rs.GetResource().GetAttributes()
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				ref := spanRef{span: sp, resource: res}
				all = append(all, ref)
				index[spanID(sp.GetTraceId(), sp.GetSpanId())] = ref
			}
		}
	}
	for _, ref := range all {
		mp.span(ref, index, &out)
	}
	slices.SortStableFunc(out.Records, func(a, b sources.Record) int {
		return cmp.Compare(recordTime(a), recordTime(b))
	})
	return out
}

// recordTime orders a request's records: malformed ones last.
func recordTime(r sources.Record) int64 {
	if r.Event == nil {
		return math.MaxInt64
	}
	return r.Event.Time
}

// span maps one span into out.
func (mp *mapper) span(ref spanRef, index map[string]spanRef, out *Mapped) {
	sp := ref.span
	effect, keyAttr := mp.effectOf(sp)
	isJob := mp.cfg.jobs() && isJobSpan(sp)
	if effect == "" && !isJob {
		out.Spans[OutcomeIgnored]++
		return
	}
	// The recorded reason names the span but not its ids, so that
	// twice_malformed_total{reason} counts kinds of problems, not spans;
	// the exporter's answer names the ids of the first.
	malformed := func(format string, args ...any) {
		problem := fmt.Sprintf(format, args...)
		out.Spans[OutcomeMalformed]++
		out.Rejected++
		if out.FirstError == "" {
			out.FirstError = fmt.Sprintf("span %q (trace %s, span %s): %s", sp.GetName(), hex.EncodeToString(sp.GetTraceId()), hex.EncodeToString(sp.GetSpanId()), problem)
		}
		reason := fmt.Sprintf("span %q: %s", sp.GetName(), problem)
		out.Records = append(out.Records, sources.Record{Malformed: &twicetype.Malformed{Source: mp.source, Reason: reason}})
	}
	if !validID(sp.GetTraceId(), 16) || !validID(sp.GetSpanId(), 8) {
		malformed("trace_id must be 16 bytes and span_id 8, not all zero")
		return
	}
	id := "otlp:" + hex.EncodeToString(sp.GetTraceId()) + ":" + hex.EncodeToString(sp.GetSpanId())
	if isJob {
		evs, reason := mp.jobEvents(sp, id)
		if reason != "" {
			malformed("%s", reason)
		} else {
			out.Spans[OutcomeJob]++
			for _, ev := range evs {
				out.Records = append(out.Records, push.EventRecord(ev))
			}
		}
	}
	if effect == "" {
		return
	}
	if sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		out.Spans[OutcomeFailed]++
		return
	}
	key, ok := stringAttr(sp.GetAttributes(), keyAttr)
	if !ok || key == "" {
		malformed("effect %s: no %s attribute (a string or number, or an array of one) for its effect_key", effect, keyAttr)
		return
	}
	if sp.GetEndTimeUnixNano() == 0 {
		malformed("effect %s: no end time", effect)
		return
	}
	e := push.Effect{
		ID:        id,
		Time:      time.Unix(0, int64(sp.GetEndTimeUnixNano())).UTC(),
		Effect:    effect,
		EffectKey: key,
		Attrs: map[string]any{
			"trace_id": hex.EncodeToString(sp.GetTraceId()),
			"span_id":  hex.EncodeToString(sp.GetSpanId()),
		},
	}
	e.JobID, _ = stringAttr(sp.GetAttributes(), mp.cfg.jobAttr())
	e.Attempt, _ = attemptAttr(sp.GetAttributes(), mp.cfg.attemptAttr())
	if e.JobID == "" {
		if job, ok := mp.jobAncestor(sp, index); ok {
			e.JobID, _ = mp.jobID(job)
			if e.Attempt == 0 {
				e.Attempt, _ = attemptAttr(job.GetAttributes(), mp.cfg.attemptAttr())
			}
		}
	}
	e.Key, _ = stringAttr(sp.GetAttributes(), attrKey)
	e.Entity, _ = stringAttr(sp.GetAttributes(), attrEntity)
	for name, attr := range mp.cfg.Attrs {
		if v, ok := anyAttr(sp.GetAttributes(), attr); ok {
			e.Attrs[name] = v
		} else if v, ok := anyAttr(ref.resource, attr); ok {
			e.Attrs[name] = v
		}
	}
	ev, err := e.Event(mp.source, 0)
	if err != nil {
		malformed("effect %s: %v", effect, err)
		return
	}
	out.Spans[OutcomeEffect]++
	out.Records = append(out.Records, push.EventRecord(ev))
}

// effectOf returns the effect type a span is, "" for none, and the
// attribute holding its effect_key.
func (mp *mapper) effectOf(sp *tracepb.Span) (effect, keyAttr string) {
	if v, ok := stringAttr(sp.GetAttributes(), mp.cfg.effectAttr()); ok && v != "" {
		return v, mp.cfg.keyAttr()
	}
	for _, r := range mp.cfg.Match {
		if ok, _ := path.Match(r.Span, sp.GetName()); ok {
			return r.Effect, or(r.KeyAttr, mp.cfg.keyAttr())
		}
	}
	return "", ""
}

// isJobSpan reports whether a span is the processing of a message: a
// CONSUMER span, or a span whose messaging operation is "process",
// unless its operation is another one (receive, settle…).
func isJobSpan(sp *tracepb.Span) bool {
	op, ok := stringAttr(sp.GetAttributes(), attrOperation)
	if !ok {
		op, ok = stringAttr(sp.GetAttributes(), attrOperationV1)
	}
	if ok {
		return op == "process"
	}
	return sp.GetKind() == tracepb.Span_SPAN_KIND_CONSUMER
}

// jobID returns a job span's job_id: the job attribute, else the message
// id.
func (mp *mapper) jobID(sp *tracepb.Span) (string, bool) {
	if v, ok := stringAttr(sp.GetAttributes(), mp.cfg.jobAttr()); ok && v != "" {
		return v, true
	}
	v, ok := stringAttr(sp.GetAttributes(), attrMessageID)
	return v, ok && v != ""
}

// jobAncestor returns the nearest ancestor of sp in the request that is
// a job span with a job id.
func (mp *mapper) jobAncestor(sp *tracepb.Span, index map[string]spanRef) (*tracepb.Span, bool) {
	cur := sp
	for i := 0; i < maxAncestors && len(cur.GetParentSpanId()) > 0; i++ {
		p, ok := index[spanID(cur.GetTraceId(), cur.GetParentSpanId())]
		if !ok {
			return nil, false
		}
		cur = p.span
		if isJobSpan(cur) {
			if _, ok := mp.jobID(cur); ok {
				return cur, true
			}
		}
	}
	return nil, false
}

// jobEvents returns the job.started and job.succeeded (or job.failed)
// events of a job span, or why it has none.
func (mp *mapper) jobEvents(sp *tracepb.Span, id string) ([]twicetype.Event, string) {
	jobID, ok := mp.jobID(sp)
	if !ok {
		return nil, fmt.Sprintf("job span: no %s or %s attribute for its job_id", mp.cfg.jobAttr(), attrMessageID)
	}
	if sp.GetStartTimeUnixNano() == 0 || sp.GetEndTimeUnixNano() == 0 {
		return nil, "job span: no start or end time"
	}
	attrs := sp.GetAttributes()
	base := map[string]any{"job_id": jobID}
	if v, ok := stringAttr(attrs, mp.cfg.jobTypeAttr()); ok && v != "" {
		base["job_type"] = v
	} else {
		base["job_type"] = sp.GetName()
	}
	if v, ok := stringAttr(attrs, mp.cfg.queueAttr()); ok && v != "" {
		base["queue"] = v
	}
	if v, ok := stringAttr(attrs, attrKey); ok && v != "" {
		base["key"] = v
	}
	if v, ok := stringAttr(attrs, attrEntity); ok && v != "" {
		base["entity"] = v
	}
	if n, ok := attemptAttr(attrs, mp.cfg.attemptAttr()); ok {
		base["attempt"] = n
	}
	ev := func(suffix, kind string, ns uint64, extra map[string]any) (twicetype.Event, error) {
		obj := map[string]any{"id": id + ":" + suffix, "kind": kind, "ts": time.Unix(0, int64(ns)).UTC().Format(time.RFC3339Nano)}
		for k, v := range base {
			obj[k] = v
		}
		for k, v := range extra {
			obj[k] = v
		}
		return jsonl.BuildEvent(obj, mp.source, 0)
	}
	started, err := ev("started", "job.started", sp.GetStartTimeUnixNano(), nil)
	if err != nil {
		return nil, "job span: " + err.Error()
	}
	var end twicetype.Event
	if failed, msg := mp.failed(sp); failed {
		extra := map[string]any{}
		if msg != "" {
			extra["error"] = msg
		}
		end, err = ev("failed", "job.failed", sp.GetEndTimeUnixNano(), extra)
	} else {
		end, err = ev("succeeded", "job.succeeded", sp.GetEndTimeUnixNano(), nil)
	}
	if err != nil {
		return nil, "job span: " + err.Error()
	}
	return []twicetype.Event{started, end}, ""
}

// failed reports whether a job span's attempt failed: its status is
// ERROR, or it has one of the configured failed_events; msg is the
// status message, else the event's exception.message or first string
// attribute.
func (mp *mapper) failed(sp *tracepb.Span) (bool, string) {
	if sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		return true, sp.GetStatus().GetMessage()
	}
	for _, e := range sp.GetEvents() {
		if !slices.Contains(mp.cfg.FailedEvents, e.GetName()) {
			continue
		}
		if v, ok := stringAttr(e.GetAttributes(), "exception.message"); ok {
			return true, v
		}
		for _, kv := range e.GetAttributes() {
			if v := kv.GetValue().GetStringValue(); v != "" {
				return true, v
			}
		}
		return true, ""
	}
	return false, ""
}

// validID reports whether id has n bytes, not all zero.
func validID(id []byte, n int) bool {
	if len(id) != n {
		return false
	}
	for _, b := range id {
		if b != 0 {
			return true
		}
	}
	return false
}

// attr returns the value of the attribute named key.
func attr(kvs []*commonpb.KeyValue, key string) (*commonpb.AnyValue, bool) {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return kv.GetValue(), kv.GetValue() != nil
		}
	}
	return nil, false
}

// stringAttr renders a string, integer, double or boolean attribute as
// written, or the one value of an array of one (HTTP headers are
// recorded as arrays: http.request.header.idempotency-key); maps, bytes
// and other arrays are not strings.
func stringAttr(kvs []*commonpb.KeyValue, key string) (string, bool) {
	v, ok := attr(kvs, key)
	if !ok {
		return "", false
	}
	if arr, ok := v.GetValue().(*commonpb.AnyValue_ArrayValue); ok {
		if len(arr.ArrayValue.GetValues()) != 1 {
			return "", false
		}
		v = arr.ArrayValue.GetValues()[0]
	}
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue, true
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10), true
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64), true
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue), true
	}
	return "", false
}

// attemptAttr reads an attempt: an integer (or a string of one) of at
// least 1.
func attemptAttr(kvs []*commonpb.KeyValue, key string) (int64, bool) {
	s, ok := stringAttr(kvs, key)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

// anyAttr returns an attribute as a JSON value: strings, numbers and
// booleans as they are, arrays and maps of them, bytes as base64.
func anyAttr(kvs []*commonpb.KeyValue, key string) (any, bool) {
	v, ok := attr(kvs, key)
	if !ok {
		return nil, false
	}
	return anyValue(v), true
}

func anyValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		out := make([]any, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, anyValue(e))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		out := map[string]any{}
		for _, kv := range x.KvlistValue.GetValues() {
			out[kv.GetKey()] = anyValue(kv.GetValue())
		}
		return out
	}
	return nil
}
