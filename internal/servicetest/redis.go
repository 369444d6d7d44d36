package servicetest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The variables `scripts/services up redis` exports: the URL of the shared
// test server, and the redis-server binary for tests that run their own.
const (
	EnvRedisURL    = "REDIS_URL"
	EnvRedisServer = "TWICE_REDIS_SERVER"
)

// redisTimeout bounds each setup and cleanup step against Redis.
const redisTimeout = 30 * time.Second

// RedisURL returns the URL of the shared test server (REDIS_URL). When it
// is unset the test is skipped, or fails under TWICE_REQUIRE_SERVICES=1.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	u := strings.TrimSpace(os.Getenv(EnvRedisURL))
	if u == "" {
		unavailable(tb, "redis", EnvRedisURL)
	}
	return u
}

// RedisSpace is a part of the shared test server that belongs to one test.
type RedisSpace struct {
	// URL is the server's URL.
	URL string
	// Prefix is the test's own key prefix, without a trailing colon (a
	// BullMQ prefix): every key the test writes starts with Prefix + ":".
	Prefix string
}

// Redis gives tb a key prefix of its own on the shared test server and
// deletes every key under it when tb ends.
func Redis(tb testing.TB) RedisSpace {
	tb.Helper()
	s := RedisSpace{URL: RedisURL(tb), Prefix: "t-" + uniqueName(tb)}
	client := redisClient(tb, s.URL)
	tb.Cleanup(func() {
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
		defer cancel()
		if err := deletePrefix(ctx, client, s.Prefix+":"); err != nil {
			tb.Errorf("servicetest: delete the keys of %s: %v", s.Prefix, err)
		}
	})
	return s
}

// RedisDB gives tb a database of its own on the shared test server, for
// clients that cannot prefix their keys (Sidekiq): it returns the server's
// URL with the database number as its path. The database is empty at the
// start and flushed when tb ends. Databases are claimed in database 0, so
// that tests in several processes never share one.
func RedisDB(tb testing.TB) string {
	tb.Helper()
	base := RedisURL(tb)
	client := redisClient(tb, base)
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	owner := uniqueName(tb)
	db := 0
	for n := 1; n < 1024 && db == 0; n++ {
		ok, err := client.SetNX(ctx, fmt.Sprintf("twice:servicetest:db:%d", n), owner, time.Hour).Result()
		if err != nil {
			tb.Fatalf("servicetest: claim a Redis database on %s: %v", base, err)
		}
		if ok {
			db = n
		}
	}
	if db == 0 {
		tb.Fatalf("servicetest: every database of %s is claimed", base)
	}
	claim := fmt.Sprintf("twice:servicetest:db:%d", db)
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("servicetest: %s %q: %v", EnvRedisURL, base, err)
	}
	u.Path = "/" + strconv.Itoa(db)
	dbURL := u.String()
	dbClient := redisClient(tb, dbURL)
	if err := dbClient.FlushDB(ctx).Err(); err != nil {
		// Past the server's `databases`: give the claim back and say so.
		client.Del(ctx, claim)
		tb.Fatalf("servicetest: database %d of %s: %v", db, base, err)
	}
	tb.Cleanup(func() {
		defer client.Close()
		defer dbClient.Close()
		ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
		defer cancel()
		if err := dbClient.FlushDB(ctx).Err(); err != nil {
			tb.Errorf("servicetest: flush Redis database %d: %v", db, err)
		}
		client.Del(ctx, claim)
	})
	return dbURL
}

// redisClient returns a client of rawURL; the caller closes it.
func redisClient(tb testing.TB, rawURL string) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		tb.Fatalf("servicetest: Redis URL %q: %v", rawURL, err)
	}
	return redis.NewClient(opt)
}

// deletePrefix deletes every key that starts with prefix.
func deletePrefix(ctx context.Context, c *redis.Client, prefix string) error {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, globEscape(prefix)+"*", 1000).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := c.Unlink(ctx, keys...).Err(); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// globEscape quotes the characters that Redis glob patterns interpret.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// RedisServer is a redis-server of one test's own, for tests that stop,
// kill and restart Redis. It keeps its data in an append-only file synced
// on every write, so a restart — after Stop or Kill — finds every key
// that a client was told was written.
type RedisServer struct {
	tb   testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// NewRedisServer starts a private redis-server on a free port of
// 127.0.0.1 and stops it when tb ends. The binary is $TWICE_REDIS_SERVER
// (scripts/services up redis exports it) or redis-server on the PATH;
// without either the test is skipped, or fails under
// TWICE_REQUIRE_SERVICES=1.
func NewRedisServer(tb testing.TB) *RedisServer {
	tb.Helper()
	bin := strings.TrimSpace(os.Getenv(EnvRedisServer))
	if bin == "" {
		if p, err := exec.LookPath("redis-server"); err == nil {
			bin = p
		}
	}
	if bin == "" {
		unavailable(tb, "redis", EnvRedisServer)
	}
	s := &RedisServer{tb: tb, bin: bin, dir: tb.TempDir()}
	tb.Cleanup(func() { s.stop(syscall.SIGTERM) })
	var err error
	for try := 0; try < 5; try++ {
		if s.port, err = freePort(); err != nil {
			continue
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	tb.Fatalf("servicetest: start redis-server: %v", err)
	return nil
}

// URL is the server's redis:// URL; it stays the same across restarts.
func (s *RedisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d", s.port) }

// Addr is the server's host:port.
func (s *RedisServer) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// Kill ends the server with SIGKILL and waits until it is gone.
func (s *RedisServer) Kill() { s.tb.Helper(); s.stop(syscall.SIGKILL) }

// Stop ends the server with SIGTERM (it saves and exits) and waits.
func (s *RedisServer) Stop() { s.tb.Helper(); s.stop(syscall.SIGTERM) }

// Running reports whether the server process is up.
func (s *RedisServer) Running() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Start starts the server again, on the same port and data, and waits
// until it answers PING (its data loaded).
func (s *RedisServer) Start() {
	s.tb.Helper()
	if s.Running() {
		return
	}
	var err error
	for try := 0; try < 50; try++ { // the port may be held for a moment
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.tb.Fatalf("servicetest: restart redis-server on %s: %v", s.Addr(), err)
}

func (s *RedisServer) start() error {
	conf := filepath.Join(s.dir, "redis.conf")
	body := fmt.Sprintf(`bind 127.0.0.1
port %d
protected-mode yes
daemonize no
dir %s
logfile %s
save ""
appendonly yes
appendfsync always
`, s.port, s.dir, filepath.Join(s.dir, "redis.log"))
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(s.bin, conf)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(redisTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server on port %d exited: %s", s.port, lastLines(string(log), 5))
		default:
		}
		if pingRESP(s.Addr()) == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.stop(syscall.SIGKILL)
	return fmt.Errorf("redis-server on port %d did not answer PING within %v", s.port, redisTimeout)
}

func (s *RedisServer) stop(sig syscall.Signal) {
	if !s.Running() {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(redisTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// pingRESP sends PING and expects +PONG: not -LOADING while the server
// reads its append-only file.
func pingRESP(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING: %s", strings.TrimSpace(line))
	}
	return nil
}

// freePort asks the kernel for a free port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
