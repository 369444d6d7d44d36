package story

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/twicehq/twice/twicetype"
)

// Render writes the story as a timeline, one step a line: the first
// step at its time, each later one with the gap since the step before
// ("+2.1s"), the events the finding names marked with "*". It ends with
// how many events were left out, if any.
func Render(w io.Writer, s *Story) error {
	if len(s.Events) == 0 {
		_, err := fmt.Fprintln(w, "  (no events of this finding were found in the input)")
		return err
	}
	var b strings.Builder
	width := len(twicetype.FormatTime(0))
	for i := range s.Events {
		ev := &s.Events[i]
		at := twicetype.FormatTime(ev.Time)
		if i > 0 {
			at = "+" + Gap(ev.Time-s.Events[i-1].Time)
		}
		mark := " "
		if i < len(s.Named) && s.Named[i] {
			mark = "*"
		}
		fmt.Fprintf(&b, "  %-*s %s %s\n", width, at, mark, Step(ev))
	}
	if s.Omitted > 0 {
		fmt.Fprintf(&b, "  … %d more events of this finding not shown\n", s.Omitted)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Text is the story rendered by Render.
func Text(s *Story) string {
	var b strings.Builder
	_ = Render(&b, s)
	return b.String()
}

// Step says what one event is, in words: "j-1 started attempt 2",
// "effect email.sent receipt/p:1 by j-1 attempt 1", "order:42 at seq 3
// (terminal)".
func Step(ev *twicetype.Event) string {
	var b strings.Builder
	attempt := ""
	if ev.HasAttempt {
		attempt = " attempt " + strconv.FormatInt(ev.Attempt, 10)
	}
	switch ev.Kind {
	case twicetype.JobEnqueued:
		fmt.Fprintf(&b, "%s enqueued", ev.JobID)
		var ctx []string
		if ev.JobType != "" {
			ctx = append(ctx, ev.JobType)
		}
		if ev.Queue != "" {
			ctx = append(ctx, "on "+ev.Queue)
		}
		if ev.Key != "" {
			ctx = append(ctx, "key "+ev.Key)
		}
		if ev.Entity != "" {
			ctx = append(ctx, "entity "+ev.Entity)
		}
		if ev.HasSeq {
			ctx = append(ctx, "seq "+strconv.FormatInt(ev.Seq, 10))
		}
		if len(ctx) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(ctx, ", "))
		}
	case twicetype.JobStarted:
		fmt.Fprintf(&b, "%s started%s", ev.JobID, attempt)
	case twicetype.JobSucceeded:
		fmt.Fprintf(&b, "%s succeeded%s", ev.JobID, attempt)
	case twicetype.JobFailed:
		fmt.Fprintf(&b, "%s failed%s", ev.JobID, attempt)
		if ev.HasRetry {
			if ev.Retry {
				b.WriteString(", will retry")
			} else {
				b.WriteString(", no retry")
			}
		}
	case twicetype.JobDead:
		fmt.Fprintf(&b, "%s went dead%s", ev.JobID, attempt)
	case twicetype.JobDiscarded:
		fmt.Fprintf(&b, "%s discarded%s", ev.JobID, attempt)
	case twicetype.Effect:
		fmt.Fprintf(&b, "effect %s %s", ev.Effect, ev.EffectKey)
		if ev.JobID != "" {
			fmt.Fprintf(&b, " by %s%s", ev.JobID, attempt)
		}
		if ev.Entity != "" {
			fmt.Fprintf(&b, " on %s", ev.Entity)
		}
		if ev.HasSeq {
			fmt.Fprintf(&b, " at seq %d", ev.Seq)
		}
	case twicetype.State:
		fmt.Fprintf(&b, "%s", ev.Entity)
		if ev.HasSeq {
			fmt.Fprintf(&b, " at seq %d", ev.Seq)
		} else {
			b.WriteString(" changed state")
		}
		if ev.Terminal {
			b.WriteString(" (terminal)")
		}
	default:
		b.WriteString(ev.Kind.String())
	}
	if ev.Error != "" {
		fmt.Fprintf(&b, ": %s", ev.Error)
	}
	fmt.Fprintf(&b, "  [%s]", ev.Ref())
	return clean(b.String())
}

// clean escapes control and bidirectional characters and invalid UTF-8
// of event data, so a step can neither break the timeline's layout nor
// drive a terminal.
func clean(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == utf8.RuneError
	}) {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

// Gap writes a duration between two steps briefly: "0s", "350ms",
// "2.1s", "4m5s", "1h2m", "3d4h".
func Gap(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d < 0:
		return "-" + Gap(-ns)
	case d == 0:
		return "0s"
	case d < time.Millisecond:
		return d.String()
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < 10*time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Minute:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d < time.Hour:
		m, s := d/time.Minute, (d%time.Minute)/time.Second
		if s == 0 {
			return fmt.Sprintf("%dm", m)
		}
		return fmt.Sprintf("%dm%ds", m, s)
	case d < 24*time.Hour:
		h, m := d/time.Hour, (d%time.Hour)/time.Minute
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	default:
		dd, h := d/(24*time.Hour), (d%(24*time.Hour))/time.Hour
		if h == 0 {
			return fmt.Sprintf("%dd", dd)
		}
		return fmt.Sprintf("%dd%dh", dd, h)
	}
}
