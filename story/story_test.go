package story_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/twicehq/twice/audit"
	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/collectors/file"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/story"
	"github.com/twicehq/twice/twicetype"
)

// receipts: p-1's job crashed after sending its receipt and the retry sent
// it again (duplicate-effect, effect-before-failure); order:7 went back in
// seq (out-of-order); j-3 is unrelated noise.
const receipts = `{"id":"e1","ts":"2026-11-24T10:00:00Z","kind":"job.enqueued","job_id":"j-1","job_type":"SendReceipt","queue":"mail","key":"p-1"}
{"id":"n1","ts":"2026-11-24T10:00:00.500Z","kind":"job.enqueued","job_id":"j-3","job_type":"Other","queue":"mail"}
{"id":"e2","ts":"2026-11-24T10:00:02.100Z","kind":"job.started","job_id":"j-1","attempt":1}
{"id":"e3","ts":"2026-11-24T10:00:02.400Z","kind":"effect","effect":"email.sent","effect_key":"receipt/p-1","job_id":"j-1","attempt":1}
{"id":"e4","ts":"2026-11-24T10:00:03.400Z","kind":"job.failed","job_id":"j-1","attempt":1,"retry":true,"error":"timeout"}
{"id":"e5","ts":"2026-11-24T10:00:05.500Z","kind":"job.started","job_id":"j-1","attempt":2}
{"id":"e6","ts":"2026-11-24T10:00:05.800Z","kind":"effect","effect":"email.sent","effect_key":"receipt/p-1","job_id":"j-1","attempt":2}
{"id":"e7","ts":"2026-11-24T10:00:06Z","kind":"job.succeeded","job_id":"j-1","attempt":2}
{"id":"n2","ts":"2026-11-24T10:00:06Z","kind":"job.started","job_id":"j-3","attempt":1}
{"id":"n3","ts":"2026-11-24T10:00:07Z","kind":"job.succeeded","job_id":"j-3","attempt":1}
{"id":"o1","ts":"2026-11-24T10:01:00Z","kind":"state","entity":"order:7","seq":2}
{"id":"o2","ts":"2026-11-24T10:01:01Z","kind":"state","entity":"order:7","seq":1}
`

// audited runs the real engine over the files and returns its findings.
func audited(t *testing.T, paths ...string) []twicetype.Finding {
	t.Helper()
	eng := engine.New(audit.EngineOptions(config.Default()))
	if err := engine.Run(context.Background(), eng, cols(paths...)); err != nil {
		t.Fatal(err)
	}
	return eng.Finish().Findings
}

func cols(paths ...string) []collectors.Collector {
	var out []collectors.Collector
	for _, p := range paths {
		out = append(out, file.New(p, file.Options{}))
	}
	return out
}

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func byDetector(t *testing.T, fs []twicetype.Finding, id string) twicetype.Finding {
	t.Helper()
	for _, f := range fs {
		if f.Detector == id {
			return f
		}
	}
	t.Fatalf("no %s finding among %d", id, len(fs))
	return twicetype.Finding{}
}

func refs(s *story.Story) string {
	var r []string
	for _, ev := range s.Events {
		r = append(r, ev.Ref())
	}
	return strings.Join(r, " ")
}

func TestCollectTellsEachFindingsStory(t *testing.T) {
	p := write(t, "events.jsonl", receipts)
	fs := audited(t, p)
	stories, err := story.Collect(context.Background(), fs, cols(p), story.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(stories) != len(fs) {
		t.Fatalf("%d stories for %d findings", len(stories), len(fs))
	}
	dup := stories[byDetector(t, fs, twicetype.DuplicateEffect).Fingerprint]
	// The job's life and both effects, in event-time order; not j-3.
	if got, want := refs(dup), "e1 e2 e3 e4 e5 e6 e7"; got != want {
		t.Errorf("duplicate-effect story = %s, want %s", got, want)
	}
	var named []string
	for i, n := range dup.Named {
		if n {
			named = append(named, dup.Events[i].Ref())
		}
	}
	if strings.Join(named, " ") != "e3 e6" {
		t.Errorf("named events = %v, want the two effects", named)
	}
	ooo := stories[byDetector(t, fs, twicetype.OutOfOrder).Fingerprint]
	if got, want := refs(ooo), "o1 o2"; got != want {
		t.Errorf("out-of-order story = %s, want %s", got, want)
	}

	text := story.Text(dup)
	for _, want := range []string{
		"  2026-11-24T10:00:00.000Z   j-1 enqueued (SendReceipt, on mail, key p-1)  [e1]\n",
		"  +2.1s                      j-1 started attempt 1  [e2]\n",
		"  +300ms                   * effect email.sent receipt/p-1 by j-1 attempt 1  [e3]\n",
		"  +1.0s                      j-1 failed attempt 1, will retry: timeout  [e4]\n",
		"  +2.1s                      j-1 started attempt 2  [e5]\n",
		"  +200ms                     j-1 succeeded attempt 2  [e7]\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("story text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "more events") {
		t.Errorf("nothing was omitted, yet:\n%s", text)
	}
}

func TestCollectReadsGzipAndCountsRepeatsOnce(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	// Every line twice: the auditor's input is at least once too.
	for _, l := range strings.SplitAfter(receipts, "\n") {
		zw.Write([]byte(l + l))
	}
	zw.Close()
	p := write(t, "events.jsonl.gz", gz.String())
	fs := audited(t, p)
	stories, err := story.Collect(context.Background(), fs, cols(p), story.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dup := stories[byDetector(t, fs, twicetype.DuplicateEffect).Fingerprint]
	if got, want := refs(dup), "e1 e2 e3 e4 e5 e6 e7"; got != want {
		t.Errorf("story = %s, want %s", got, want)
	}
}

func TestCollectCapsPerFindingKeepingNamedEvents(t *testing.T) {
	// One job retried 30 times with an effect on the first and the last
	// attempt: a story of 5 keeps both effects and the earliest others.
	var b strings.Builder
	b.WriteString(`{"id":"q","ts":"2026-11-24T10:00:00Z","kind":"job.enqueued","job_id":"j","job_type":"T","key":"k"}` + "\n")
	for a := 1; a <= 30; a++ {
		ts := 1795514400000 + int64(a)*1000
		b.WriteString(`{"id":"s` + itoa(a) + `","ts":` + itoa64(ts) + `,"kind":"job.started","job_id":"j","attempt":` + itoa(a) + "}\n")
		if a == 1 || a == 30 {
			b.WriteString(`{"id":"x` + itoa(a) + `","ts":` + itoa64(ts+1) + `,"kind":"effect","effect":"m","effect_key":"k","job_id":"j","attempt":` + itoa(a) + "}\n")
		}
		b.WriteString(`{"id":"f` + itoa(a) + `","ts":` + itoa64(ts+2) + `,"kind":"job.failed","job_id":"j","attempt":` + itoa(a) + ",\"retry\":true}\n")
	}
	p := write(t, "retries.jsonl", b.String())
	fs := audited(t, p)
	dupF := byDetector(t, fs, twicetype.DuplicateEffect)
	stories, err := story.Collect(context.Background(), []twicetype.Finding{dupF}, cols(p), story.Options{PerFinding: 5})
	if err != nil {
		t.Fatal(err)
	}
	s := stories[dupF.Fingerprint]
	if got, want := refs(s), "q s1 x1 f1 x30"; got != want {
		t.Errorf("capped story = %s, want %s", got, want)
	}
	total := int64(1 + 30*2 + 2)
	if s.Omitted != total-5 {
		t.Errorf("omitted = %d, want %d", s.Omitted, total-5)
	}
	if !strings.Contains(story.Text(s), "… 58 more events of this finding not shown") {
		t.Errorf("text does not count the omitted events:\n%s", story.Text(s))
	}
}

func TestCollectBoundsTotal(t *testing.T) {
	p := write(t, "events.jsonl", receipts)
	fs := audited(t, p)
	if len(fs) < 3 {
		t.Fatalf("want at least 3 findings, got %d", len(fs))
	}
	stories, err := story.Collect(context.Background(), fs, cols(p), story.Options{PerFinding: 10, MaxEvents: 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(stories) != 2 || stories[fs[0].Fingerprint] == nil || stories[fs[1].Fingerprint] == nil {
		t.Errorf("want stories for the first 2 findings only, got %d", len(stories))
	}
}

func TestCollectNamesAnUnreadableInput(t *testing.T) {
	_, err := story.Collect(context.Background(), nil, cols(filepath.Join(t.TempDir(), "nope.jsonl")), story.Options{})
	if err == nil || !strings.Contains(err.Error(), "nope.jsonl") {
		t.Fatalf("err = %v, want one naming the file", err)
	}
}

func TestGap(t *testing.T) {
	for ns, want := range map[int64]string{
		0: "0s", 350e6: "350ms", 2.1e9: "2.1s", 42e9: "42s", 245e9: "4m5s",
		3600e9: "1h", 3720e9: "1h2m", 100 * 3600e9: "4d4h", -2e9: "-2.0s",
	} {
		if got := story.Gap(ns); got != want {
			t.Errorf("Gap(%d) = %s, want %s", ns, got, want)
		}
	}
}

func TestStepEscapesEventText(t *testing.T) {
	ev := &twicetype.Event{ID: "e\x1b[31m", Kind: twicetype.JobFailed, JobID: "j\u202e1", Error: "boom\nline two"}
	got := story.Step(ev)
	if strings.ContainsAny(got, "\x1b\n\u202e") || !strings.Contains(got, `boom\nline two`) {
		t.Errorf("Step = %q: control characters must be escaped", got)
	}
}

func itoa(i int) string     { return strconv.Itoa(i) }
func itoa64(i int64) string { return strconv.FormatInt(i, 10) }
