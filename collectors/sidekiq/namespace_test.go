package sidekiq

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twicehq/twice/internal/servicetest"
)

// TestNamespace: a Sidekiq whose keys redis-namespace prefixes (the real
// gem, Debian's ruby-redis-namespace) is read with namespace: in both
// modes.
func TestNamespace(t *testing.T) {
	ruby, _ := needRuby(t)
	url := servicetest.RedisDB(t)
	ctx := context.Background()
	cmd := exec.CommandContext(ctx, ruby, filepath.Join(repoRoot(t), "collectors", "sidekiq", "testdata", "app", "namespaced.rb"))
	cmd.Env = append(os.Environ(), "REDIS_URL="+url, "RUBYOPT=-W0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("namespaced.rb: %v\n%s", err, out)
	}
	jid := strings.TrimSpace(string(out))

	opt, _ := redis.ParseURL(url)
	c := redis.NewClient(opt)
	defer c.Close()
	if n, _ := c.Exists(ctx, "myapp:"+DefaultStream, "myapp:queue:default").Result(); n != 2 {
		t.Fatalf("the namespaced keys exist %d of 2 times: the middleware wrote outside the namespace?", n)
	}

	r, err := NewStreamReader("jobs", Config{Redis: url, Mode: ModeMiddleware, Namespace: "myapp", Key: "args.0"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(ctx)
	if err := r.Start(ctx, Position{}); err != nil {
		t.Fatal(err)
	}
	recs, err := r.Read(ctx, time.Second, 10)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, rec := range recs {
		if rec.Event == nil || rec.Event.JobID != jid || rec.Event.Key != "k-1" {
			t.Fatalf("record %+v, want an event of %s with key k-1", rec, jid)
		}
		kinds = append(kinds, rec.Event.Kind.String())
	}
	if strings.Join(kinds, " ") != "job.enqueued job.started job.succeeded" {
		t.Errorf("middleware events %v", kinds)
	}

	p, err := NewPoller("jobs", Config{Redis: url, Namespace: "myapp", Key: "args.0"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(ctx)
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := p.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 1 || b.Events[0].JobID != jid || b.Events[0].Kind.String() != "job.enqueued" || b.Events[0].Key != "k-1" {
		t.Errorf("poll events %+v, want the enqueue of %s", b.Events, jid)
	}
}
