package sources_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/twicetype"
)

// pushFactory is a tap that keeps no history (an HTTP endpoint).
type pushFactory struct{}

type pushConfig struct{ Listen string }

func (*pushConfig) Validate() error { return nil }

func (pushFactory) Type() string { return "push" }

func (pushFactory) DecodeConfig(m *config.SourceMapping) config.SourceSettings {
	m.Known("listen")
	c := &pushConfig{}
	m.Require("listen")
	m.String("listen", &c.Listen)
	return c
}

func (pushFactory) NewStream(config.Source, sources.StreamOptions) (sources.Stream, error) {
	return nil, errors.New("not in this test")
}

// logFactory is a tap that keeps history: its collector reports a gap.
type logFactory struct{ pushFactory }

func (logFactory) Type() string { return "log" }

func (logFactory) NewCollectors(_ context.Context, src config.Source, _ sources.CollectOptions) ([]collectors.Collector, error) {
	return []collectors.Collector{&gapCollector{name: src.Name}}, nil
}

type gapCollector struct {
	name string
	done bool
}

func (c *gapCollector) Name() string                   { return c.name }
func (c *gapCollector) Start(context.Context) error    { return nil }
func (c *gapCollector) Shutdown(context.Context) error { return nil }
func (c *gapCollector) Next(context.Context) (*collectors.Batch, error) {
	if c.done {
		return nil, io.EOF
	}
	c.done = true
	from := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC).UnixNano()
	return &collectors.Batch{Lost: []twicetype.Gap{
		{Lane: "emails", Reason: "stream trimmed", Count: 3, From: from, To: from + int64(time.Minute)},
		{Lane: "emails", Reason: "stream trimmed", Count: 2, From: from + int64(time.Hour), To: from + int64(2*time.Hour)},
	}}, nil
}

func TestRegistry(t *testing.T) {
	reg := sources.NewRegistry(pushFactory{}, logFactory{})
	if got := strings.Join(reg.Types(), ","); got != "log,push" {
		t.Errorf("Types = %s", got)
	}
	if err := reg.Register(pushFactory{}); err == nil {
		t.Error("a type registered twice is no error")
	}
	if _, ok := reg.Lookup("kafka"); ok {
		t.Error("Lookup of a type never registered succeeded")
	}
	cfg, err := config.ParseWith("twice.yaml", []byte("sources:\n  - {name: hook, type: push, listen: ':9000'}\n  - {name: app, type: log, listen: ':1'}\n"),
		config.Options{Sources: reg})
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := cfg.Sources[0].Settings.(*pushConfig); !ok || c.Listen != ":9000" {
		t.Fatalf("settings = %#v", cfg.Sources[0].Settings)
	}

	// Audit: a source without history says to watch it.
	_, err = reg.NewCollectors(context.Background(), cfg.Sources[0], sources.CollectOptions{})
	var nh *sources.NoHistoryError
	if !errors.As(err, &nh) || err.Error() != "source hook (type push) keeps no history; use twice watch" {
		t.Errorf("NewCollectors of a push source: %v", err)
	}

	// Audit: gaps the collectors report become one warning per lane and
	// reason.
	cov := &sources.Coverage{}
	cols, err := reg.NewCollectors(context.Background(), cfg.Sources[1], sources.CollectOptions{Coverage: cov})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := cols[0].Next(context.Background()); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	ws := cov.Warnings()
	if len(ws) != 1 || ws[0].Code != twicetype.WarnCoverageLost {
		t.Fatalf("warnings = %+v", ws)
	}
	want := "Source app (emails) lost 5 events between 2026-11-24T10:00:00.000Z and 2026-11-24T12:00:00.000Z (stream trimmed)"
	if !strings.HasPrefix(ws[0].Message, want) {
		t.Errorf("warning = %q\nwant it to start %q", ws[0].Message, want)
	}

	if _, err := reg.NewStream(config.Source{Name: "x", Type: "nope"}, sources.StreamOptions{}); err == nil {
		t.Error("NewStream of an unknown type is no error")
	}
}

func TestIntPosition(t *testing.T) {
	p := sources.IntPosition(1234)
	if p != "1234" {
		t.Errorf("IntPosition = %q", p)
	}
	if n, err := p.Int(); err != nil || n != 1234 {
		t.Errorf("Int = %d, %v", n, err)
	}
	if _, err := sources.Position("1700000000000-3").Int(); err == nil {
		t.Error("a stream id read as an offset")
	}
}
