package servicetest

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The variables `scripts/services up rabbitmq` exports: the AMQP URL of the
// shared test node (its default vhost "/"), and a rabbitmqctl bound to that
// node.
const (
	EnvRabbitMQURL = "RABBITMQ_URL"
	EnvRabbitMQCtl = "TWICE_RABBITMQCTL"
)

// rabbitmqTimeout bounds each rabbitmqctl call (each starts an Erlang VM).
const rabbitmqTimeout = time.Minute

// RabbitMQSpace is a vhost of the shared test node that belongs to one test.
type RabbitMQSpace struct {
	// URL is the AMQP URL of the vhost: amqp://guest:guest@127.0.0.1:PORT/VHOST
	// (the vhost path-escaped), for amqp091-go and for Celery's broker_url.
	URL string
	// VHost is the vhost's name.
	VHost string
}

// RabbitMQ gives tb a vhost of its own on the shared test node, with every
// permission for guest, and deletes it (its exchanges and queues with it)
// when tb ends. Without RABBITMQ_URL and TWICE_RABBITMQCTL the test is
// skipped, or fails under TWICE_REQUIRE_SERVICES=1.
func RabbitMQ(tb testing.TB) RabbitMQSpace {
	tb.Helper()
	base := strings.TrimSpace(os.Getenv(EnvRabbitMQURL))
	if base == "" {
		unavailable(tb, "rabbitmq", EnvRabbitMQURL)
	}
	ctl := strings.TrimSpace(os.Getenv(EnvRabbitMQCtl))
	if ctl == "" {
		unavailable(tb, "rabbitmq", EnvRabbitMQCtl)
	}
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("servicetest: %s %q: %v", EnvRabbitMQURL, base, err)
	}
	vhost := "t-" + uniqueName(tb)
	rabbitmqctl(tb, ctl, "add_vhost", vhost)
	tb.Cleanup(func() { rabbitmqctl(tb, ctl, "delete_vhost", vhost) })
	user := "guest"
	if u.User != nil {
		user = u.User.Username()
	}
	rabbitmqctl(tb, ctl, "set_permissions", "-p", vhost, user, ".*", ".*", ".*")
	u.Path, u.RawPath = "/"+vhost, "/"+url.PathEscape(vhost)
	return RabbitMQSpace{URL: u.String(), VHost: vhost}
}

// rabbitmqctl runs the test node's rabbitmqctl with args, failing tb when
// it fails.
func rabbitmqctl(tb testing.TB, ctl string, args ...string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rabbitmqTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, ctl, append([]string{"-q"}, args...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("servicetest: rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
