package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/twicehq/twice/config"
)

// ConfigHash names what in a configuration shapes the detectors' state:
// rules, detector settings, redaction and engine settings (ConfigText).
// A sidecar's saved state is restored as it is under the same hash, and
// re-judged under another; sources, sinks and intervals may change
// between runs.
func ConfigHash(cfg *config.Config) string {
	sum := sha256.Sum256([]byte(ConfigText(cfg)))
	return hex.EncodeToString(sum[:12])
}

// ConfigText describes, one line each, what ConfigHash covers: every
// expect rule, the settings of every detector configured, redaction,
// engine settings and state limits; so that a sidecar can say what
// changed between runs.
func ConfigText(cfg *config.Config) string {
	var b strings.Builder
	for _, r := range cfg.Expect {
		tmpl := ""
		if r.EffectKey != nil {
			tmpl = r.EffectKey.String()
		}
		fmt.Fprintf(&b, "rule %q %q %q %d %d\n", r.JobType, r.Effect, tmpl, r.Within, r.Count)
	}
	ids := make([]string, 0, len(cfg.Detectors))
	for id := range cfg.Detectors {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		fmt.Fprintf(&b, "detector %q %+v\n", id, cfg.Detectors[id])
	}
	fmt.Fprintf(&b, "redact %q\n", cfg.Redact)
	// Written only when set, so that the hash of a configuration without
	// them stays what it was before they existed.
	if cfg.KeepEmails {
		b.WriteString("keep_emails\n")
	}
	if im := cfg.Impact; im != nil {
		fmt.Fprintf(&b, "impact %q %q %q\n", im.Amount, im.Currency, im.Customer)
	}
	fmt.Fprintf(&b, "engine %d %d %d\n", cfg.Engine.Lateness, cfg.Engine.ReorderBuffer, cfg.Engine.Horizon)
	l := cfg.Watch.Limits
	fmt.Fprintf(&b, "limits %d %d %d %d\n", l.MaxJobs, l.MaxEffectKeys, l.MaxEntities, l.MaxIdentities)
	return b.String()
}
