package sidekiq

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/twicehq/twice/internal/servicetest"
)

// repoRoot is the repository's root directory.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// needRuby returns the paths of ruby and sidekiq (Debian's ruby-sidekiq,
// which scripts/deps.d/sidekiq.sh installs). Without them the test is
// skipped, or fails under TWICE_REQUIRE_SERVICES=1.
func needRuby(tb testing.TB) (ruby, sidekiq string) {
	tb.Helper()
	ruby, err1 := exec.LookPath("ruby")
	sidekiq, err2 := exec.LookPath("sidekiq")
	if err1 != nil || err2 != nil {
		msg := "ruby and sidekiq are not installed: run scripts/deps.d/sidekiq.sh"
		if os.Getenv(servicetest.EnvRequire) == "1" {
			tb.Fatalf("%s (%s=1 requires them)", msg, servicetest.EnvRequire)
		}
		tb.Skip("skipped: " + msg)
	}
	return ruby, sidekiq
}
