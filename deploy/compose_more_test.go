package deploy

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/twicehq/twice/config"
)

// mounts returns a service's bind mounts and volumes, target -> source.
func mounts(t *testing.T, s service) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			t.Fatalf("volume %q: want SOURCE:TARGET[:MODE]", v)
		}
		out[parts[1]] = parts[0]
	}
	return out
}

// script returns the shell script a service runs (entrypoint and command
// joined), with line continuations joined into one line.
func script(s service) string {
	return strings.ReplaceAll(strings.Join(append(slices.Clone(s.Entrypoint), s.Command...), "\n"), "\\\n", " ")
}

// TestComposePortsOnLoopback: nothing in the compose has authentication,
// so every published port is bound to the host's 127.0.0.1 only.
func TestComposePortsOnLoopback(t *testing.T) {
	b := setup(t)
	for name, s := range b.compose.Services {
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("service %s publishes %q on every host interface, want 127.0.0.1:HOST:CONTAINER", name, p)
			}
		}
	}
	if twice := b.service(t, "twice"); !slices.Contains(twice.Ports, "127.0.0.1:8080:8080") {
		t.Errorf("twice ports %q, want 127.0.0.1:8080:8080", twice.Ports)
	}
}

// TestComposeTwiceHealthcheck: the twice container is checked with
// `twice healthcheck` (the image has no shell or curl) on its config.
func TestComposeTwiceHealthcheck(t *testing.T) {
	b := setup(t)
	s := b.service(t, "twice")
	if s.Healthcheck == nil || len(s.Healthcheck.Test) < 3 {
		t.Fatalf("twice has no healthcheck test")
	}
	test := s.Healthcheck.Test
	if test[0] != "CMD" || !strings.HasSuffix(test[1], "twice") || test[2] != "healthcheck" {
		t.Errorf("healthcheck %q, want [CMD, .../twice, healthcheck, ...] (exec form: no shell in the image)", test)
	}
	i := slices.Index(test, "--config")
	j := slices.Index(s.Command, "--config")
	if i < 0 || i+1 >= len(test) || j < 0 || test[i+1] != s.Command[j+1] {
		t.Errorf("healthcheck %q does not read the config the watch runs with (%q)", test, s.Command)
	}
	dockerfile := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(b.dockerfile, " ") // continuations joined
	if !regexp.MustCompile(`(?m)^HEALTHCHECK .*CMD \["/usr/local/bin/twice", "healthcheck"`).MatchString(dockerfile) {
		t.Errorf("Dockerfile has no HEALTHCHECK running twice healthcheck")
	}
}

// TestComposeFindingsTopicCompacted: the findings topic is keyed by
// fingerprint, so kafka-init creates it compacted.
func TestComposeFindingsTopicCompacted(t *testing.T) {
	b := setup(t)
	cfg, err := config.Load("twice.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var topics []string
	for _, s := range cfg.Watch.Findings {
		if s.Type == config.SinkKafka {
			topics = append(topics, s.Topic)
		}
	}
	if len(topics) == 0 {
		t.Fatal("deploy/twice.yaml has no kafka findings sink")
	}
	lines := strings.Split(script(b.service(t, "kafka-init")), "\n")
	for _, topic := range topics {
		found := false
		for _, l := range lines {
			if strings.Contains(l, "--create") && strings.Contains(l, "--topic "+topic+" ") {
				found = true
				if !strings.Contains(l, "--config cleanup.policy=compact") {
					t.Errorf("kafka-init creates the findings topic %s without cleanup.policy=compact: %s", topic, strings.TrimSpace(l))
				}
			}
		}
		if !found {
			t.Errorf("kafka-init has no kafka-topics --create --topic %s", topic)
		}
	}
}

// TestComposeClickHouse: the compose ClickHouse runs the minor the tests
// run (chDB's, scripts/services.d/clickhouse.sh), and deploy/twice.yaml
// stores events in it with the compose credentials.
func TestComposeClickHouse(t *testing.T) {
	b := setup(t)
	ch := b.service(t, "clickhouse")
	m := regexp.MustCompile(`(?m)^CLICKHOUSE_CHDB_VERSION=\$\{CLICKHOUSE_CHDB_VERSION:-(\d+\.\d+)\.`).FindSubmatch(read(t, "../scripts/services.d/clickhouse.sh"))
	if m == nil {
		t.Fatal("scripts/services.d/clickhouse.sh: no CLICKHOUSE_CHDB_VERSION default")
	}
	if want := "clickhouse/clickhouse-server:" + string(m[1]); ch.Image != want && !strings.HasPrefix(ch.Image, want+".") {
		t.Errorf("clickhouse image %q, want %s (the minor the tests run)", ch.Image, want)
	}

	cfg, err := config.Load("twice.yaml")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(cfg.Watch.Store)
	if err != nil || cfg.Watch.Store == "" {
		t.Fatalf("deploy/twice.yaml watch.store %q: want the compose ClickHouse (%v)", cfg.Watch.Store, err)
	}
	if u.Scheme != "clickhouse" || u.Host != "clickhouse:9000" {
		t.Errorf("watch.store %q, want clickhouse://…@clickhouse:9000/… (the compose service, native port)", cfg.Watch.Store)
	}
	pass, _ := u.User.Password()
	if u.User.Username() != ch.Environment["CLICKHOUSE_USER"] || pass != ch.Environment["CLICKHOUSE_PASSWORD"] ||
		strings.TrimPrefix(u.Path, "/") != ch.Environment["CLICKHOUSE_DB"] {
		t.Errorf("watch.store %q, want user, password and database %s, %s, %s of the compose ClickHouse", cfg.Watch.Store,
			ch.Environment["CLICKHOUSE_USER"], ch.Environment["CLICKHOUSE_PASSWORD"], ch.Environment["CLICKHOUSE_DB"])
	}
	if _, ok := b.service(t, "twice").DependsOn["clickhouse"]; !ok {
		t.Errorf("twice does not depend on clickhouse")
	}
}

// TestComposeDemoProducer: a one-shot service replays the demo events
// into a topic deploy/twice.yaml reads as twice events, once the topics
// exist.
func TestComposeDemoProducer(t *testing.T) {
	b := setup(t)
	s := b.service(t, "demo")
	if s.Image != b.service(t, "kafka").Image {
		t.Errorf("demo image %q, want the kafka service's %q (its console producer)", s.Image, b.service(t, "kafka").Image)
	}
	if c := s.DependsOn["kafka-init"]["condition"]; c != "service_completed_successfully" {
		t.Errorf("demo depends on kafka-init with %v, want service_completed_successfully", c)
	}
	var target string
	for dst, src := range mounts(t, s) {
		if strings.TrimPrefix(src, "./") == "testdata/demo/events.jsonl" {
			target = dst
		}
	}
	if target == "" {
		t.Fatalf("demo mounts %q, want ./testdata/demo/events.jsonl", s.Volumes)
	}
	sh := script(s)
	m := regexp.MustCompile(`kafka-console-producer\.sh --bootstrap-server (\S+) +--topic (\S+) < (\S+)`).FindStringSubmatch(sh)
	if m == nil {
		t.Fatalf("demo does not run kafka-console-producer.sh --bootstrap-server B --topic T < FILE:\n%s", sh)
	}
	if !slices.Contains(kafkaAddrs(b.service(t, "kafka")), m[1]) {
		t.Errorf("demo produces to %s, not an advertised listener of kafka", m[1])
	}
	if m[3] != target {
		t.Errorf("demo reads %s, want the mounted demo file %s", m[3], target)
	}
	cfg, err := config.Load("twice.yaml")
	if err != nil {
		t.Fatal(err)
	}
	read := false
	for _, src := range cfg.Sources {
		if src.Kafka != nil && src.Kafka.Format == config.FormatTwice && slices.Contains(src.Kafka.Topics, m[2]) {
			read = true
		}
	}
	if !read {
		t.Errorf("demo produces to topic %s, which no kafka source of format twice in deploy/twice.yaml reads", m[2])
	}
}

// TestStateDirWritableAsNonroot: the image runs as distroless's nonroot
// (65532), and the state dir the compose volume is mounted on is created
// owned by it, so a fresh named volume (which copies the image's
// ownership) is writable.
func TestStateDirWritableAsNonroot(t *testing.T) {
	b := setup(t)
	if !regexp.MustCompile(`(?m)^USER 65532(:65532)?$`).MatchString(b.dockerfile) {
		t.Errorf("Dockerfile: no USER 65532")
	}
	cfg, err := config.Load("twice.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := cfg.Watch.StateDir
	if !regexp.MustCompile(`(?m)^COPY --from=build --chown=65532:65532 \S+ ` + regexp.QuoteMeta(dir) + `/?$`).MatchString(b.dockerfile) {
		t.Errorf("Dockerfile does not create %s owned by 65532:65532", dir)
	}
	if vol := mounts(t, b.service(t, "twice"))[dir]; !hasKey(b.compose.Volumes, vol) {
		t.Errorf("state dir %s is on %q, want a named volume", dir, vol)
	}
}
