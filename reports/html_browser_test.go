package reports

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/twicehq/twice/internal/servicetest"
)

var (
	screenshots = flag.String("screenshots", "", "TestHTMLInBrowser: write PNG screenshots of the page to this folder (relative to reports/)")
	htmlPage    = flag.String("html", "", "TestHTMLInBrowser: also open this html report (twice audit --format html -o FILE) and screenshot it instead of the fixture")
)

// needChromium returns the path of the browser the html test opens pages
// in; without it the test skips, or fails under TWICE_REQUIRE_SERVICES=1
// (scripts/deps.d/chromium.sh installs it).
func needChromium(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium is not installed: run scripts/deps.d/chromium.sh"
	if os.Getenv(servicetest.EnvRequire) == "1" {
		tb.Fatalf("%s (%s=1 requires it)", msg, servicetest.EnvRequire)
	}
	tb.Skip(msg)
	return ""
}

// browser is one headless chromium with the network cut off (every host
// name fails to resolve) and what its page wrote to the console.
type browser struct {
	ctx context.Context
	mu  sync.Mutex
	// problems are console errors and warnings, uncaught exceptions and
	// browser log entries of level warning or error (a refused script, a
	// blocked load).
	problems []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := needChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND"),
		chromedp.Flag("proxy-server", "127.0.0.1:9"))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: ctx}
	// Start the browser (the first Run does) before listening.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		var p string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			switch ev.Type {
			case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeWarning, runtime.ConsoleAPICalledTypeAssert:
				p = fmt.Sprintf("console.%s (%d args)", ev.Type, len(ev.Args))
				if len(ev.Args) > 0 {
					p += fmt.Sprintf(": %s", ev.Args[0].Value)
				}
			}
		case *runtime.EventExceptionThrown:
			p = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				p += " " + ev.ExceptionDetails.Exception.Description
			}
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
				p = fmt.Sprintf("log %s/%s: %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text)
			}
		}
		if p != "" {
			b.mu.Lock()
			b.problems = append(b.problems, p)
			b.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("listen to chromium: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, log.Enable, cdp.Empty{})
		return err
	})); err != nil {
		t.Fatalf("enable the browser log: %v", err)
	}
	return b
}

// open loads the file and waits until the page says it is ready (its
// script sets data-ready on <body> after drawing) or failed.
func (b *browser) open(t *testing.T, path string) {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+abs),
		chromedp.WaitReady(chromedp.CSS("body[data-ready]"))); err != nil {
		t.Fatalf("open %s: %v; console: %v", path, err, b.console())
	}
	state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.ready + " " + (document.body.dataset.error || "")`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(state, "1 ") {
		t.Fatalf("page did not draw: data-ready=%q; console: %v", state, b.console())
	}
}

func (b *browser) console() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// pageView is what a reader sees, read from the DOM.
type pageView struct {
	Verdict   string            `json:"verdict"`
	Counts    map[string]string `json:"counts"`
	Scorecard [][]string        `json:"scorecard"`
	Shown     string            `json:"shown"`
	// Stories has the step texts of each story, in page order.
	Stories [][]string `json:"stories"`
	// Charts has the size of each chart and how many marks it drew.
	Charts map[string]chartView `json:"charts"`
}

type chartView struct {
	Width, Height float64
	Bars, Marks   int
}

const readPage = `(() => {
  const txt = e => e.textContent.replace(/\s+/g, " ").trim();
  const counts = {};
  document.querySelectorAll("#summary [data-count]").forEach(d => counts[d.dataset.count] = txt(d.querySelector("dd")));
  const charts = {};
  document.querySelectorAll("svg.chart").forEach(s => {
    const r = s.getBoundingClientRect();
    charts[s.id] = {Width: r.width, Height: r.height, Bars: s.querySelectorAll("rect").length, Marks: s.querySelectorAll("a.marker").length};
  });
  return {
    verdict: txt(document.getElementById("verdict")),
    counts,
    scorecard: [...document.querySelectorAll("table.scorecard tbody tr")].map(tr => [...tr.cells].map(txt)),
    shown: txt(document.getElementById("shown") || document.body),
    stories: [...document.querySelectorAll("ol.steps")].map(ol => [...ol.querySelectorAll(".what")].map(txt)),
    charts,
  };
})()`

// TestHTMLInBrowser opens the html report in chromium, from a file with
// the network cut off, and checks what a reader sees: the page drew its
// charts without a console error, the scorecard rows, the counts and a
// finding's story in order. With -screenshots DIR it writes PNGs of the
// page; with -html FILE it opens that report (the demo's) instead of the
// fixture and checks what holds for any report.
func TestHTMLInBrowser(t *testing.T) {
	b := newBrowser(t)

	t.Run("broken page is caught", func(t *testing.T) {
		// The check of the console must be able to fail: a script the
		// page's policy refuses, and one that throws.
		path := filepath.Join(t.TempDir(), "broken.html")
		throws := `document.body.dataset.ready = "1"; throw new Error("boom")`
		sum := sha256.Sum256([]byte(throws))
		page := `<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'sha256-` +
			base64.StdEncoding.EncodeToString(sum[:]) + `'"></head><body><script>` + throws + `</script><script>console.log("refused")</script></body></html>`
		if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
		before := len(b.console())
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path)); err != nil {
			t.Fatal(err)
		}
		// The refusal is reported when the page loads; wait for it
		// through the page, not a sleep.
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.readyState === "complete"`)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(b.console()) < before+2 && time.Now().Before(deadline) {
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`0`)); err != nil {
				t.Fatal(err)
			}
		}
		got := strings.Join(b.console()[before:], "\n")
		for _, want := range []string{"exception: Uncaught", "boom", "log security/error: Executing inline script violates"} {
			if !strings.Contains(got, want) {
				t.Errorf("a page that throws and has a script refused: %q not reported; got:\n%s", want, got)
			}
		}
	})

	t.Run("fixture", func(t *testing.T) {
		r, opts := htmlFixture()
		path := filepath.Join(t.TempDir(), "report.html")
		if err := os.WriteFile(path, []byte(render(t, "html", opts, r)), 0o644); err != nil {
			t.Fatal(err)
		}
		before := len(b.console())
		b.open(t, path)
		v := readView(t, b)
		checkCharts(t, v, 6)
		if p := b.console()[before:]; len(p) > 0 {
			t.Errorf("console problems: %v", p)
		}
		if !strings.HasPrefix(v.Verdict, "FAIL: 6 findings at or above low") {
			t.Errorf("verdict %q", v.Verdict)
		}
		for k, want := range map[string]string{"events": "1200", "jobs": "400", "findings": "6", "malformed": "30"} {
			if v.Counts[k] != want {
				t.Errorf("count %s = %q, want %q", k, v.Counts[k], want)
			}
		}
		wantCard := [][]string{
			{"SendReceipt", "emails", "120", "unsafe 1/4 #1", "safe ×3", "not exercised", "not exercised"},
			{"ChargeCard", "payments", "80", "not exercised", "not exercised", "not exercised", "not exercised"},
		}
		if fmt.Sprint(v.Scorecard) != fmt.Sprint(wantCard) {
			t.Errorf("scorecard rows\n%q\nwant\n%q", v.Scorecard, wantCard)
		}
		if v.Shown != "6 of 6 findings shown." {
			t.Errorf("shown %q", v.Shown)
		}
		if len(v.Stories) != 1 {
			t.Fatalf("%d stories, want 1", len(v.Stories))
		}
		want := []string{"j-1 enqueued", "j-1 started attempt 1", "effect email.sent receipt/payment:123 by j-1 attempt 1",
			"j-1 failed attempt 1", "j-1 started attempt 2", "effect email.sent receipt/payment:123 by j-1 attempt 2", "j-1 succeeded attempt 2"}
		steps := v.Stories[0]
		if len(steps) != len(want) {
			t.Fatalf("story %q, want %d steps", steps, len(want))
		}
		for i, w := range want {
			if !strings.HasPrefix(steps[i], w) {
				t.Errorf("story step %d = %q, want it to start with %q", i+1, steps[i], w)
			}
		}
		if *htmlPage == "" {
			shoot(t, b)
		}
	})

	if *htmlPage != "" {
		t.Run("page", func(t *testing.T) {
			before := len(b.console())
			b.open(t, *htmlPage)
			v := readView(t, b)
			checkCharts(t, v, 1)
			if p := b.console()[before:]; len(p) > 0 {
				t.Errorf("console problems: %v", p)
			}
			t.Logf("%s: %s; %d scorecard rows, %d stories", *htmlPage, v.Verdict, len(v.Scorecard), len(v.Stories))
			shoot(t, b)
		})
	}
}

func readView(t *testing.T, b *browser) pageView {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[pageView](readPage))
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	return v
}

// checkCharts checks that both charts drew: a size, bars, and at least
// minMarks finding marks on the timeline.
func checkCharts(t *testing.T, v pageView, minMarks int) {
	t.Helper()
	for _, id := range []string{"timeline-chart", "detector-chart"} {
		c, ok := v.Charts[id]
		if !ok {
			t.Errorf("no chart %s", id)
			continue
		}
		if c.Width <= 0 || c.Height <= 0 || c.Bars == 0 {
			t.Errorf("chart %s did not draw: %+v", id, c)
		}
	}
	if m := v.Charts["timeline-chart"].Marks; m < minMarks {
		t.Errorf("timeline marks %d findings, want at least %d", m, minMarks)
	}
}

// shoot writes screenshots of the open page to -screenshots: the top
// of the page (verdict, summary, scorecard, timeline) and the first
// finding with its story.
func shoot(t *testing.T, b *browser) {
	t.Helper()
	if *screenshots == "" {
		return
	}
	if err := os.MkdirAll(*screenshots, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	// The top of the page down to the end of the timeline.
	bottom, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById("timeline").getBoundingClientRect().bottom + window.scrollY + 16`))
	if err != nil {
		t.Fatal(err)
	}
	top, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		if _, err := chromedp.EmulateViewport(1280, int64(bottom))(ctx, tg); err != nil {
			return nil, err
		}
		return chromedp.CaptureScreenshot()(ctx, tg)
	})
	if err != nil {
		t.Fatal(err)
	}
	story, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("article.finding")))
	if err != nil {
		t.Fatal(err)
	}
	for name, png := range map[string][]byte{"html-report.png": top, "html-story.png": story} {
		path := filepath.Join(*screenshots, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", path, len(png))
	}
}
