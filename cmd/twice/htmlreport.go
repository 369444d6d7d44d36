package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twicehq/twice/audit"
	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/collectors/file"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/redact"
	"github.com/twicehq/twice/reports"
	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/sources/builtin"
	"github.com/twicehq/twice/story"
	"github.com/twicehq/twice/twicetype"
)

// The html report shows more than the report holds: the events per time
// bucket (counted on the way into the engine) and, per finding it shows,
// the story of its jobs (read again from the input after the audit).

// teeTimeline counts the events of cols in tl as the audit reads them.
func teeTimeline(cols []collectors.Collector, tl *reports.Timeline) []collectors.Collector {
	out := make([]collectors.Collector, len(cols))
	for i, c := range cols {
		out[i] = collectors.Tee(c, func(_ context.Context, b *collectors.Batch) error {
			for k := range b.Events {
				tl.Add(&b.Events[k])
			}
			return nil
		})
	}
	return out
}

// htmlStories reads the audit's input again and returns the stories of
// the findings the html report shows (the first top of each detector, or
// all with top 0). Events are redacted as the findings are, before the
// stories match them, so a redacted job id still finds its job. Stdin
// cannot be read twice: its findings get no story, and it says so.
func htmlStories(ctx context.Context, e env, cfg *config.Config, in inputs, since time.Time, rep *twicetype.Report, top int) (map[string]*story.Story, error) {
	if slices.Contains(in.paths, "-") {
		fmt.Fprintln(e.stderr, "twice: html: findings get no story: stdin (-) cannot be read a second time")
		return nil, nil
	}
	shown := reports.HTMLFindings(rep.Findings, top)
	if len(shown) == 0 {
		return nil, nil
	}
	var cols []collectors.Collector
	for _, p := range in.paths {
		cols = append(cols, file.New(p, file.Options{Stdin: e.stdin}))
	}
	for _, src := range in.taps {
		tcols, err := builtin.Registry().NewCollectors(ctx, src, sources.CollectOptions{
			Since: since, Stdin: e.stdin, DeadLetterMaxBytes: cfg.Watch.DeadLetterMaxBytes,
			Logf: func(format string, args ...any) {}})
		if err != nil {
			return nil, fmt.Errorf("html: stories: %w", err)
		}
		cols = append(cols, tcols...)
	}
	red := storyRedactor(cfg)
	for i, c := range cols {
		cols[i] = collectors.Tee(c, func(_ context.Context, b *collectors.Batch) error {
			for k := range b.Events {
				red(&b.Events[k])
			}
			return nil
		})
	}
	stories, err := story.Collect(ctx, shown, cols, story.Options{})
	if err != nil {
		return nil, fmt.Errorf("html: %w", err)
	}
	return stories, nil
}

// storyRedactor returns what redacts an event as the audit redacts the
// findings: the fields twice.yaml redact names hashed, then, unless
// redact_emails is false, email addresses hidden. Attrs are dropped: no
// report shows them.
func storyRedactor(cfg *config.Config) func(ev *twicetype.Event) {
	field := audit.Redactor(cfg.Redact)
	return func(ev *twicetype.Event) {
		ev.Attrs = nil
		for _, s := range []struct {
			name string
			v    *string
		}{
			{"id", &ev.ID}, {"job_id", &ev.JobID}, {"key", &ev.Key}, {"effect_key", &ev.EffectKey},
			{"entity", &ev.Entity}, {"queue", &ev.Queue}, {"job_type", &ev.JobType},
			{"effect", &ev.Effect}, {"error", &ev.Error}, {"source", &ev.Source},
		} {
			if field != nil && *s.v != "" {
				*s.v = field(s.name, *s.v)
			}
			if !cfg.KeepEmails {
				*s.v = redact.Email(*s.v)
			}
		}
	}
}
