package sidekiq

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/twicehq/twice/internal/servicetest"
)

// TestRubyMiddleware runs the middleware's own minitest suite against a
// database of the test Redis.
func TestRubyMiddleware(t *testing.T) {
	ruby, _ := needRuby(t)
	url := servicetest.RedisDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ruby, filepath.Join(repoRoot(t), "integrations", "sidekiq", "twice_middleware_test.rb"))
	cmd.Env = append(os.Environ(), "REDIS_URL="+url, "RUBYOPT=-W0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ruby twice_middleware_test.rb: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
