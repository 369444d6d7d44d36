package celery

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/twicehq/twice/internal/watchtest"
)

func TestMain(m *testing.M) { os.Exit(watchtest.Main(m)) }

// writeWatchConfig writes a twice.yaml that watches the mix's broker (as
// source "celery", so its queue is not the in-process tap's) and effects.
func (m *mix) writeWatchConfig() string {
	m.t.Helper()
	path := filepath.Join(m.dir, "twice.yaml")
	cfg := fmt.Sprintf(`sources:
  - name: celery
    type: celery
    broker: %s
    key: args.0
  - name: effects
    type: file
    path: %s
expect:
  - job_type: app.send_receipt
    effect: email.sent
    effect_key: "receipt/{{key}}"
    within: 2s
detectors:
  stale-execution: {max_start_delay: 12s}
watch:
  state_dir: %s
  listen: 127.0.0.1:0
  checkpoint_interval: 200ms
  snapshot_interval: 1s
`, m.broker, m.effects, filepath.Join(m.dir, "state"))
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		m.t.Fatal(err)
	}
	if f, err := os.OpenFile(m.effects, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		f.Close()
	}
	return path
}
