package deploy

import (
	"github.com/twicehq/twice/config"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The subset of the Compose file format these tests read.
type composeFile struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image       string                    `yaml:"image"`
	Build       *build                    `yaml:"build"`
	Entrypoint  []string                  `yaml:"entrypoint"`
	Command     []string                  `yaml:"command"`
	Ports       []string                  `yaml:"ports"`
	Volumes     []string                  `yaml:"volumes"`
	Environment map[string]string         `yaml:"environment"`
	DependsOn   map[string]map[string]any `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

type build struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

// bundle is the deployment read from the repo: docker-compose.yml,
// Dockerfile and deploy/twice.yaml (as a generic tree).
type bundle struct {
	compose    composeFile
	dockerfile string
	config     map[string]any
	configPath string // where the twice service reads its config
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{}
	raw := read(t, "../docker-compose.yml")
	if err := yaml.Unmarshal(raw, &b.compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	b.dockerfile = string(read(t, "../Dockerfile"))
	if err := yaml.Unmarshal(read(t, "twice.yaml"), &b.config); err != nil {
		t.Fatalf("deploy/twice.yaml: %v", err)
	}
	return b
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func (b *bundle) service(t *testing.T, name string) service {
	t.Helper()
	s, ok := b.compose.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %q", name)
	}
	return s
}

// published reports whether s publishes container port p on the same host
// port ("p:p" or "ip:p:p", optionally "/tcp").
func published(s service, p string) bool {
	for _, spec := range s.Ports {
		spec = strings.TrimSuffix(spec, "/tcp")
		parts := strings.Split(spec, ":")
		if len(parts) >= 2 && parts[len(parts)-1] == p && parts[len(parts)-2] == p {
			return true
		}
	}
	return false
}

func TestServices(t *testing.T) {
	b := setup(t)
	for _, tc := range []struct {
		name, image string
		ports       []string
	}{
		{"kafka", "apache/kafka:4.", []string{"9094"}},
		{"clickhouse", "clickhouse/clickhouse-server:", []string{"8123", "9000"}},
		{"twice", "", []string{"8080"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := b.service(t, tc.name)
			if tc.image != "" && !strings.HasPrefix(s.Image, tc.image) {
				t.Errorf("image %q, want the official %s*", s.Image, tc.image)
			}
			for _, p := range tc.ports {
				if !published(s, p) {
					t.Errorf("port %s not published (ports: %q)", p, s.Ports)
				}
			}
		})
	}
}

// TestKafkaListeners: clients in the compose network reach kafka:9092, the
// host reaches localhost:9094, the published port.
func TestKafkaListeners(t *testing.T) {
	b := setup(t)
	adv := kafkaAddrs(b.service(t, "kafka"))
	for _, want := range []string{"kafka:9092", "localhost:9094"} {
		if !slices.Contains(adv, want) {
			t.Errorf("KAFKA_ADVERTISED_LISTENERS has %q, want %s among them", adv, want)
		}
	}
}

// kafkaAddrs lists the host:port of a Kafka service's advertised listeners.
func kafkaAddrs(s service) []string {
	var out []string
	for l := range strings.SplitSeq(s.Environment["KAFKA_ADVERTISED_LISTENERS"], ",") {
		if _, addr, ok := strings.Cut(strings.TrimSpace(l), "://"); ok {
			out = append(out, addr)
		}
	}
	return out
}

func TestTwiceImage(t *testing.T) {
	b := setup(t)
	s := b.service(t, "twice")
	if s.Build == nil || s.Build.Context != "." {
		t.Fatalf("twice: build %+v, want context . (the repo root)", s.Build)
	}
	dockerfile := orDefault(s.Build.Dockerfile, "Dockerfile")
	if _, err := os.Stat(filepath.Join("..", dockerfile)); err != nil {
		t.Fatalf("twice builds from %s: %v", dockerfile, err)
	}
	if !regexp.MustCompile(`(?m)^FROM golang:1\.26\S* AS build$`).MatchString(b.dockerfile) {
		t.Errorf("Dockerfile: no golang:1.26 build stage")
	}
	if !regexp.MustCompile(`go build .*-o \S+ \./cmd/twice\b`).MatchString(b.dockerfile) {
		t.Errorf("Dockerfile does not build ./cmd/twice")
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestTwiceConfigMounted: `twice watch --config P` runs with
// deploy/twice.yaml mounted at P, its state dir on a named volume and its
// listen port published.
func TestTwiceConfigMounted(t *testing.T) {
	b := setup(t)
	s := b.service(t, "twice")
	if len(s.Command) == 0 || s.Command[0] != "watch" {
		t.Fatalf("twice command %q, want watch ...", s.Command)
	}
	i := slices.Index(s.Command, "--config")
	if i < 0 || i+1 >= len(s.Command) {
		t.Fatalf("twice command %q has no --config FILE", s.Command)
	}
	path := s.Command[i+1]
	mounts := map[string]string{} // target -> source
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			t.Fatalf("volume %q: want SOURCE:TARGET[:MODE]", v)
		}
		mounts[parts[1]] = parts[0]
	}
	if src := mounts[path]; filepath.Clean(src) != "deploy/twice.yaml" {
		t.Errorf("%s is mounted from %q, want ./deploy/twice.yaml", path, src)
	}
	if _, err := os.Stat("twice.yaml"); err != nil {
		t.Error(err)
	}

	watch, _ := b.config["watch"].(map[string]any)
	stateDir, _ := watch["state_dir"].(string)
	if stateDir != "/var/lib/twice" {
		t.Errorf("twice.yaml watch.state_dir %q, want /var/lib/twice", stateDir)
	}
	if vol := mounts[stateDir]; b.compose.Volumes == nil || !hasKey(b.compose.Volumes, vol) {
		t.Errorf("state dir %s is on %q, want a named volume", stateDir, vol)
	}
	listen, _ := watch["listen"].(string)
	_, port, err := net.SplitHostPort(listen)
	if err != nil || !published(s, port) {
		t.Errorf("twice.yaml watch.listen %q is not a published port of twice (%q)", listen, s.Ports)
	}
}

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}

// TestTwiceConfigBrokers: every brokers list in deploy/twice.yaml names the
// compose Kafka by its in-network address, and every topic it names is one
// that kafka-init creates.
func TestTwiceConfigBrokers(t *testing.T) {
	b := setup(t)
	inNetwork := map[string]bool{}
	for _, addr := range kafkaAddrs(b.service(t, "kafka")) {
		if host, _, _ := net.SplitHostPort(addr); host == "kafka" {
			inNetwork[addr] = true
		}
	}
	if len(inNetwork) == 0 {
		t.Fatal("kafka advertises no listener on the compose service name")
	}
	brokers := collect(b.config, "brokers")
	if len(brokers) < 3 { // two sources and the findings sink
		t.Fatalf("deploy/twice.yaml names brokers %d times, want 3 or more", len(brokers))
	}
	for _, br := range brokers {
		if !inNetwork[br] {
			t.Errorf("deploy/twice.yaml broker %q: want one of %v", br, inNetwork)
		}
	}

	initWords := strings.FieldsFunc(strings.Join(b.service(t, "kafka-init").Command, " "), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r))
	})
	topics := append(collect(b.config, "topics"), collect(b.config, "topic")...)
	if len(topics) < 3 {
		t.Fatalf("deploy/twice.yaml names topics %q, want 3 or more", topics)
	}
	for _, topic := range topics {
		if !slices.Contains(initWords, topic) {
			t.Errorf("topic %q of deploy/twice.yaml is not created by kafka-init", topic)
		}
	}
}

// collect returns the strings under every key named key, at any depth, each
// a string or a list of strings.
func collect(v any, key string) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if k == key {
				switch e := e.(type) {
				case string:
					out = append(out, e)
				case []any:
					for _, x := range e {
						s, _ := x.(string)
						out = append(out, s)
					}
				}
				continue
			}
			out = append(out, collect(e, key)...)
		}
	case []any:
		for _, e := range v {
			out = append(out, collect(e, key)...)
		}
	}
	return out
}

// TestSidecarConfigLoads loads deploy/twice.yaml with twice's own strict
// loader: the example a user starts from must be a valid configuration
// with kafka sources and a state dir on the compose volume.
func TestSidecarConfigLoads(t *testing.T) {
	cfg, err := config.Load("twice.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sources) == 0 {
		t.Fatal("no sources")
	}
	for _, s := range cfg.Sources {
		if s.Type != config.SourceKafka {
			t.Errorf("source %s is %s, want kafka", s.Name, s.Type)
		}
	}
	if cfg.Watch.StateDir != "/var/lib/twice" {
		t.Errorf("state_dir %q, want /var/lib/twice (the compose volume)", cfg.Watch.StateDir)
	}
}
