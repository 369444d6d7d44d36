package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/internal/schemaregistry/registrytest"
	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/internal/watchtest"
	"github.com/twicehq/twice/twicetype"
)

// srModules returns the directory @kafkajs/confluent-schema-registry is
// installed in; without it (or node) the test skips, or fails under
// TWICE_REQUIRE_SERVICES=1.
func srModules(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TWICE_SCHEMAREGISTRY_MODULES")
	if dir == "" {
		dir = filepath.Join("..", "..", ".services", "node", "schemaregistry")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, errPkg := os.Stat(filepath.Join(dir, "node_modules", "@kafkajs", "confluent-schema-registry", "package.json"))
	_, errNode := exec.LookPath("node")
	if errPkg != nil || errNode != nil {
		msg := "@kafkajs/confluent-schema-registry is not installed in " + dir + " (or node is missing): run scripts/deps.d/schemaregistry.sh"
		if os.Getenv(servicetest.EnvRequire) == "1" {
			t.Fatalf("%s (%s=1 requires it)", msg, servicetest.EnvRequire)
		}
		t.Skipf("skipped: %s", msg)
	}
	return dir
}

// srMessage is one message of the producer's plan.
type srMessage struct {
	Format string         `json:"format"`
	ID     int            `json:"id,omitempty"`
	Value  map[string]any `json:"value"`
}

// srProduce runs integrations/schemaregistry/produce.js: the real
// serializer registers its schemas with the registry at registryURL and
// writes msgs, in order, to partition 0 of topic.
func srProduce(t *testing.T, modules, registryURL, user, password string, brokers []string, topic string, msgs []srMessage) {
	t.Helper()
	plan, err := json.Marshal(map[string]any{
		"registry": map[string]string{"host": registryURL, "username": user, "password": password},
		"brokers":  brokers, "topic": topic, "messages": msgs,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("..", "..", "integrations", "schemaregistry", "produce.js"))
	cmd.Env = append(os.Environ(), "SR_MODULES="+modules)
	cmd.Stdin = bytes.NewReader(plan)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("produce.js: %v\n%s", err, stderr.String())
	}
	t.Logf("produce.js: %s", bytes.TrimSpace(out))
}

// srPlan is what both tests produce: one value in each encoding, one
// plain JSON value, and one in the wire format with an id the registry
// does not have.
var srPlan = []srMessage{
	{Format: "avro", Value: map[string]any{"payment_id": "p-avro", "job_id": "j-1", "attempt": 1, "amount_cents": 1250,
		"at": 1772359200000, "customer": map[string]any{"id": "c-1", "email": nil}}},
	// protobufjs, under the serializer, takes the fields in lowerCamelCase;
	// the .proto names them payment_id, job_id.
	{Format: "protobuf", Value: map[string]any{"paymentId": "p-proto", "jobId": "j-2", "attempt": 2,
		"amount": map[string]any{"currency": "EUR", "cents": 990}, "at": "2026-03-01T10:01:00Z"}},
	{Format: "json", Value: map[string]any{"payment_id": "p-json", "job_id": "j-3", "attempt": 1, "amount_cents": 500, "at": "2026-03-01T10:02:00Z"}},
	{Format: "plain", Value: map[string]any{"payment_id": "p-plain", "job_id": "j-4", "attempt": 1, "amount_cents": 7, "at": "2026-03-01T10:03:00Z"}},
	{Format: "wire", ID: 999999, Value: map[string]any{"payment_id": "p-lost", "at": "2026-03-01T10:04:00Z"}},
}

// srWant are the records of srPlan: the events, as srRecord prints them,
// and the malformed message of the unknown id.
var srWant = []string{
	`0 effect 2026-03-01T10:00:00Z payment.captured p-avro job=j-1 attempt=1 attrs={"amount_cents":1250,"customer":"c-1"}`,
	`1 effect 2026-03-01T10:01:00Z payment.captured p-proto job=j-2 attempt=2 attrs={"amount_cents":990,"customer":null}`,
	`2 effect 2026-03-01T10:02:00Z payment.captured p-json job=j-3 attempt=1 attrs={"amount_cents":500,"customer":null}`,
	`3 effect 2026-03-01T10:03:00Z payment.captured p-plain job=j-4 attempt=1 attrs={"amount_cents":7,"customer":null}`,
	`4 malformed: pay TOPIC[0]:4: value: schema id 999999 is not in the schema registry (404)`,
}

// srSource is the source of the docs' example, read from YAML.
func srSource(t *testing.T, brokers []string, topic, group, registryURL string, pwFile string) config.Source {
	t.Helper()
	y := fmt.Sprintf(`sources:
  - name: pay
    type: kafka
    brokers: [%s]
    topics: [%s]
    group: %s
    format: map
    schema_registry:
      url: %s
      username: twice
      password_file: %s
    map:
      kind: '"effect"'
      ts: value.at
      effect: '"payment.captured"'
      effect_key: value.payment_id
      job_id: value.job_id
      attempt: value.attempt
      attrs: '{"amount_cents": value.amount_cents ?? int(value.amount?.cents), "customer": value.customer?.id}'
`, strings.Join(brokers, ", "), topic, group, registryURL, pwFile)
	cfg, err := config.Parse("twice.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg.Sources[0]
}

func srRecord(topic string, offset int64, ev *twicetype.Event, mal *twicetype.Malformed) string {
	if mal != nil {
		return fmt.Sprintf("%d malformed: %s", offset, strings.ReplaceAll(mal.Error(), topic, "TOPIC"))
	}
	return fmt.Sprintf("%d %s %s %s %s job=%s attempt=%d attrs=%s", offset, ev.Kind,
		time.Unix(0, ev.Time).UTC().Format(time.RFC3339), ev.Effect, ev.EffectKey, ev.JobID, ev.Attempt, ev.Attrs)
}

// srSetup starts a registry (with basic auth) and produces srPlan to a
// topic of the test's own.
func srSetup(t *testing.T) (brokers []string, topic string, reg *registrytest.Registry, registryURL, pwFile string) {
	t.Helper()
	brokers = kafkaBrokers(t)
	modules := srModules(t)
	reg = registrytest.New()
	reg.Username, reg.Password = "twice", "registry-pw-7f3a"
	registryURL = registrytest.Start(t, reg)
	pwFile = filepath.Join(t.TempDir(), "registry-password")
	if err := os.WriteFile(pwFile, []byte(reg.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	topic = kafkaTopic(t, brokers, 1)
	srProduce(t, modules, registryURL, reg.Username, reg.Password, brokers, topic, srPlan)
	return brokers, topic, reg, registryURL, pwFile
}

// pollRecords polls c until it has returned n records.
func pollRecords(t *testing.T, c *Consumer, topic string, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got []string
	for len(got) < n {
		recs, err := c.Poll(ctx, time.Second)
		if err != nil {
			t.Fatalf("Poll: %v (records so far:\n%s)", err, strings.Join(got, "\n"))
		}
		for i := range recs {
			got = append(got, srRecord(topic, recs[i].Offset, &recs[i].Event, recs[i].Malformed))
		}
	}
	return got
}

// TestSchemaRegistryValues reads values written by the real
// @kafkajs/confluent-schema-registry serializer, in Avro (with a
// reference), Protobuf (with an import) and JSON Schema, with `format:
// map`: each is decoded by its schema and mapped as the same JSON would
// be; a plain JSON value is read as JSON; a wire-format value with an id
// the registry does not know is malformed, naming the id and offset. The
// watch's Consumer and the audit's range collectors read the same.
func TestSchemaRegistryValues(t *testing.T) {
	brokers, topic, reg, registryURL, pwFile := srSetup(t)
	src := srSource(t, brokers, topic, kafkaGroup(t), registryURL, pwFile)

	c, err := NewConsumer(src, ConsumerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Shutdown(context.Background()) })
	if err := c.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	got := pollRecords(t, c, topic, len(srWant))
	if !slices.Equal(got, srWant) {
		t.Errorf("watch records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(srWant, "\n"))
	}
	if n := c.Stats().Counts().Malformed; n != 1 {
		t.Errorf("malformed = %d, want 1", n)
	}
	if err := c.Health(); err != nil {
		t.Errorf("Health = %v, want nil", err)
	}

	// The audit reads the topic the same way.
	tps := []TopicPartition{{topic, 0}}
	cols, _, err := NewRangeCollectors(src, tps, RangeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := cols[0].Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer cols[0].Shutdown(ctx)
	var audit []string
	for {
		b, err := cols[0].Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := range b.Events {
			audit = append(audit, srRecord(topic, b.Events[i].Line, &b.Events[i], nil))
		}
		for i := range b.Malformed {
			audit = append(audit, srRecord(topic, b.Malformed[i].Line, nil, &b.Malformed[i]))
		}
	}
	slices.Sort(audit)
	if !slices.Equal(audit, srWant) {
		t.Errorf("audit records:\n%s\nwant:\n%s", strings.Join(audit, "\n"), strings.Join(srWant, "\n"))
	}
	t.Logf("the registry was asked for schemas %d times", reg.Lookups())
}

// TestSchemaRegistryDown starts the watch's Consumer with the registry
// unreachable (a proxy in front of it, down): the partition waits on its
// first message, Health says so (the source is not ready) and nothing is
// marked malformed; once the registry is back every message comes, once,
// in order.
func TestSchemaRegistryDown(t *testing.T) {
	brokers, topic, _, registryURL, pwFile := srSetup(t)
	u, err := url.Parse(registryURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := servicetest.NewProxy(t, u.Host) // starts down
	src := srSource(t, brokers, topic, kafkaGroup(t), "http://"+proxy.Addr(), pwFile)

	errs := make(chan error, 100)
	c, err := NewConsumer(src, ConsumerOptions{OnError: func(_ TopicPartition, err error) {
		select {
		case errs <- err:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Shutdown(context.Background()) })
	if err := c.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !IsRetryable(err) || !strings.Contains(err.Error(), topic+"[0] offset 0") {
			t.Fatalf("error while the registry is down: %v", err)
		}
		if strings.Contains(err.Error(), "registry-pw-7f3a") {
			t.Fatalf("the error shows the password: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("no error reported while the registry is down")
	}
	health := c.Health()
	if health == nil || !strings.Contains(health.Error(), "schema registry unavailable") {
		t.Fatalf("Health = %v, want the registry named", health)
	}
	// Nothing was handed on: the first message waits for its schema.
	if recs, err := c.Poll(context.Background(), 10*time.Millisecond); err != nil || len(recs) != 0 {
		t.Fatalf("Poll while the registry is down = %v, %v; want nothing", recs, err)
	}
	if n := c.Stats().Counts().Malformed; n != 0 {
		t.Fatalf("malformed while the registry is down = %d, want 0", n)
	}

	proxy.Up()
	got := pollRecords(t, c, topic, len(srWant))
	if !slices.Equal(got, srWant) {
		t.Errorf("records after the registry came back:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(srWant, "\n"))
	}
	if recs, err := c.Poll(context.Background(), 100*time.Millisecond); err != nil || len(recs) != 0 {
		t.Errorf("more records than messages: %v, %v", recs, err)
	}
	if n := c.Stats().Counts().Malformed; n != 1 {
		t.Errorf("malformed = %d, want 1 (the unknown id)", n)
	}
	// Ready again once the partition's next fetch succeeds.
	deadline := time.Now().Add(30 * time.Second)
	for c.Health() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Health = %v 30 s after the registry came back", c.Health())
		}
		if recs, err := c.Poll(context.Background(), 200*time.Millisecond); err != nil || len(recs) != 0 {
			t.Fatalf("more records than messages: %v, %v", recs, err)
		}
	}
}

// TestSchemaRegistryWatch runs the real `twice watch` on srPlan's topic
// with the registry down: /readyz answers 503 naming the registry and no
// message is taken or marked malformed; once the registry is up the watch
// takes the four events and the one malformed message, and is ready. The
// registry's password, from a file, shows nowhere in its log.
func TestSchemaRegistryWatch(t *testing.T) {
	brokers, topic, _, registryURL, pwFile := srSetup(t)
	bin := watchtest.Build(t)
	u, err := url.Parse(registryURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := servicetest.NewProxy(t, u.Host) // starts down
	dir := t.TempDir()
	cfg := fmt.Sprintf(`sources:
  - name: pay
    type: kafka
    brokers: [%s]
    topics: [%s]
    group: %s
    format: map
    schema_registry: {url: "http://%s", username: twice, password_file: %s}
    map:
      kind: '"effect"'
      ts: value.at
      effect: '"payment.captured"'
      effect_key: value.payment_id
      job_id: value.job_id
watch: {listen: 127.0.0.1:0, state_dir: %s, findings: [], idle_timeout: 1s}
`, strings.Join(brokers, ", "), topic, kafkaGroup(t), proxy.Addr(), pwFile, filepath.Join(dir, "state"))
	path := filepath.Join(dir, "twice.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "watch.log")
	w := watchtest.Start(t, bin, path, logPath, 1)

	readyz := func() (int, string) {
		resp, err := http.Get("http://" + w.Addr() + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	w.WaitFor(t, "/readyz naming the registry", func() bool {
		code, body := readyz()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "schema registry unavailable")
	})
	if m := w.Metrics(); m["twice_events_total"] != 0 || m["twice_malformed_total"] != 0 {
		t.Fatalf("while the registry is down: events %v, malformed %v; want 0, 0", m["twice_events_total"], m["twice_malformed_total"])
	}

	proxy.Up()
	w.WaitFor(t, "every message taken", func() bool {
		m := w.Metrics()
		return m["twice_events_total"] >= 4 && m["twice_malformed_total"] >= 1
	})
	w.WaitFor(t, "ready", w.Ready)
	if m := w.Metrics(); m["twice_events_total"] != 4 || m["twice_malformed_total"] != 1 {
		t.Errorf("events %v, malformed %v; want 4, 1", m["twice_events_total"], m["twice_malformed_total"])
	}
	w.Stop(t)
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "schema registry unavailable") {
		t.Errorf("the watch's log does not say the registry was unavailable:\n%s", log)
	}
	if strings.Contains(string(log), "registry-pw-7f3a") {
		t.Errorf("the watch's log shows the registry's password")
	}
}
