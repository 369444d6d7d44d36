package sidecar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/twicehq/twice/twicetype"
)

// findingView is what the HTTP API shows: the last revision of every
// finding, shared between the watch loop and the handlers.
type findingView struct {
	mu      sync.RWMutex
	byFP    map[string]*savedFinding
	summary twicetype.Summary
}

func newFindingView() *findingView { return &findingView{byFP: map[string]*savedFinding{}} }

func (v *findingView) set(fp string, sf *savedFinding) {
	v.mu.Lock()
	v.byFP[fp] = sf
	v.mu.Unlock()
}

func (v *findingView) setSummary(s twicetype.Summary) {
	v.mu.Lock()
	v.summary = s
	v.mu.Unlock()
}

func (v *findingView) all() []*savedFinding {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]*savedFinding, 0, len(v.byFP))
	for _, sf := range v.byFP {
		out = append(out, sf)
	}
	return out
}

// Handler returns the HTTP API:
//
//	GET /findings   findings that stand, as JSON; ?detector=ID (repeatable),
//	                ?severity=S (that severity or more severe), ?since=T
//	                (RFC 3339: changed at or after T), ?resolved=true to
//	                include findings that no longer stand
//	GET /metrics    Prometheus metrics of gatherer
//	GET /healthz    200 while the watch loop runs
//	GET /readyz     200 once the state is restored and every source is
//	                read; 503 with one line per source that is not, and why
func (w *Watcher) Handler(gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /findings", w.serveFindings)
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		select {
		case <-w.done:
			http.Error(rw, "watch stopped", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(rw, "ok")
		}
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		code, text := w.readyText()
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.WriteHeader(code)
		fmt.Fprint(rw, text)
	})
	return mux
}

func (w *Watcher) serveFindings(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	detectors := map[string]bool{}
	for _, d := range q["detector"] {
		for _, id := range strings.Split(d, ",") {
			if !slices.Contains(twicetype.DetectorIDs, id) {
				http.Error(rw, fmt.Sprintf("detector %q: not a detector id", id), http.StatusBadRequest)
				return
			}
			detectors[id] = true
		}
	}
	minSev := twicetype.Severity(0)
	if s := q.Get("severity"); s != "" {
		sev, err := twicetype.ParseSeverity(s)
		if err != nil || sev == twicetype.SeverityNone {
			http.Error(rw, fmt.Sprintf("severity %q: want critical, high, medium or low", s), http.StatusBadRequest)
			return
		}
		minSev = sev
	}
	var since time.Time
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			http.Error(rw, fmt.Sprintf("since %q: want an RFC 3339 time", s), http.StatusBadRequest)
			return
		}
		since = t
	}
	resolved := q.Get("resolved") == "true"
	list := w.view.all()
	sort.Slice(list, func(i, k int) bool {
		return list[i].updated.Before(list[k].updated) || (list[i].updated.Equal(list[k].updated) && bytes.Compare(list[i].Line, list[k].Line) < 0)
	})
	var buf bytes.Buffer
	buf.WriteString(`{"findings":[`)
	n := 0
	for _, sf := range list {
		if sf.Resolved && !resolved {
			continue
		}
		if len(detectors) > 0 && !detectors[sf.detector] {
			continue
		}
		if sev, err := twicetype.ParseSeverity(sf.severity); err == nil && sev < minSev {
			continue
		}
		if !since.IsZero() && sf.updated.Before(since) {
			continue
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		buf.Write(sf.Line)
		n++
	}
	w.view.mu.RLock()
	sum := w.view.summary
	w.view.mu.RUnlock()
	// Coverage travels with the findings: records dropped by a cap, or
	// lost by a source (coverage.go), mean findings may be missing.
	lost := w.cov.Warnings()
	fmt.Fprintf(&buf, `],"count":%d,"summary":{"events":%d,"repeated_ids":%d,"malformed":%d,"late":%d,"evicted":%d,"coverage_reduced":%t`,
		n, sum.Events, sum.RepeatedIDs, sum.Malformed, sum.Late, sum.Evicted, sum.Evicted > 0 || len(lost) > 0)
	if len(lost) > 0 {
		msgs := make([]string, len(lost))
		for i, wn := range lost {
			msgs[i] = wn.Message
		}
		ws, _ := json.Marshal(msgs)
		buf.WriteString(`,"warnings":`)
		buf.Write(ws)
	}
	buf.WriteString("}}\n")
	rw.Header().Set("Content-Type", "application/json")
	rw.Write(buf.Bytes())
}
