package servicetest

import (
	"net/url"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestRabbitMQVHost connects to a test's own vhost and declares a queue
// there; once the test ended the vhost is gone and the URL is refused.
func TestRabbitMQVHost(t *testing.T) {
	var space RabbitMQSpace
	t.Run("inner", func(t *testing.T) {
		space = RabbitMQ(t)
		u, err := url.Parse(space.URL)
		if err != nil || u.Path != "/"+space.VHost {
			t.Fatalf("URL %q: path %q, err %v", space.URL, u.Path, err)
		}
		conn, err := amqp.Dial(space.URL)
		if err != nil {
			t.Fatalf("dial %s: %v", space.URL, err)
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ch.QueueDeclare("q", true, false, false, false, nil); err != nil {
			t.Fatalf("declare a queue in %s: %v", space.VHost, err)
		}
	})
	if space.URL == "" {
		t.Skip("skipped: the inner test had no RabbitMQ")
	}
	if conn, err := amqp.Dial(space.URL); err == nil {
		conn.Close()
		t.Errorf("vhost %s still reachable after its test ended", space.VHost)
	}
}
