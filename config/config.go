// Package config reads twice.yaml (spec §3): where events come from, which
// effects each job type must produce, detector thresholds, severities and
// switches, which fields reports hash, how the engine buffers events and
// how `twice watch` runs.
//
// Load and Parse check a file strictly: an unknown key, a duplicate key, a
// value of the wrong type or out of range is an error that names the file,
// line, column and key path. Every problem is reported, joined with
// errors.Join. Everything is optional; an empty file is Default.
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twicehq/twice/collectors/kafka/mapexpr"
	"github.com/twicehq/twice/detectors"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/keytemplate"
	"github.com/twicehq/twice/twicetype"
)

// Config is a whole twice.yaml.
type Config struct {
	// Sources are the inputs the configuration names, in file order.
	Sources []Source
	// Expect are the expectation rules, in file order.
	Expect []Rule
	// Detectors holds one entry per id in twicetype.DetectorIDs after Load,
	// Parse or Default, each with every field set (defaults where the file
	// says nothing, also for thresholds of other detectors).
	Detectors map[string]Detector
	// Redact names the fields hashed before they reach any report: id,
	// job_id, key, effect_key, entity, queue, job_type, effect, error.
	Redact []string
	// KeepEmails, set by redact_emails: false, leaves email addresses in
	// reports and findings sinks as they are; by default every
	// email-shaped string is redacted (package redact).
	KeepEmails bool
	// Impact says where effects' amounts, currencies and customers are
	// read (twice.yaml impact); nil when not configured.
	Impact *Impact
	// Engine tunes how events are buffered and how long state is kept.
	Engine Engine
	// Watch configures `twice watch`, the sidecar.
	Watch Watch
}

// Source is one input, of Type "file" or "kafka".
//
// A file source reads Paths: JSON Lines files, "-" for stdin, ".gz" read as
// gzip, globs expanded by Files. Load makes relative paths relative to the
// configuration file's folder; Parse keeps them as written. A kafka
// source reads the topics that Kafka names.
type Source struct {
	// Name names the source in reports and on the command line; Load sets
	// it to the first path of a file source when the file gives none (a
	// kafka source must have one). Names are unique.
	Name string
	// Type is the collector type, SourceFile or SourceKafka; Load sets
	// "file" when the file gives none.
	Type string
	// Paths are the files of a file source; empty for kafka.
	Paths []string
	// Kafka is set for a kafka source, nil for a file source.
	Kafka *KafkaSource
	// Settings are the decoded settings of a source of a type other than
	// file and kafka: the type its tap's factory decodes (package
	// sources); nil for file and kafka, which use Paths and Kafka.
	// Validate checks them.
	Settings SourceSettings
	// Line is where the source is written in the file, 0 when built in
	// code.
	Line int
}

// The source types.
const (
	SourceFile  = "file"
	SourceKafka = "kafka"
)

// KafkaSource is what a source of type kafka reads and how it maps
// messages to events.
type KafkaSource struct {
	// Brokers are the bootstrap brokers, host:port; at least one.
	Brokers []string
	// Topics are read in full, every partition; at least one, unique.
	Topics []string
	// Group is the consumer group twice commits its positions to, for lag
	// dashboards and as a fallback start; default DefaultGroup.
	Group string
	// Format is FormatTwice (default: each message value is one
	// normalized event, spec §1, as JSON) or FormatMap (the value is any
	// JSON and Map says how it becomes an event).
	Format string
	// Map holds, for FormatMap, one expression per event field, in file
	// order; empty for FormatTwice.
	Map []MapField
	// Outputs holds, for FormatMap with map written as a list, its
	// mappings: a message makes one event per mapping whose When holds
	// (fan-out). Map is then empty.
	Outputs []MapOutput
	// Skip, for FormatMap, is a condition over the message: a message for
	// which it holds is skipped (counted, not malformed).
	Skip *mapexpr.Program
	// Debezium says, for FormatDebezium, how change events become events.
	Debezium *KafkaDebezium
	// Start is where a consumer with no checkpoint and no committed group
	// offset starts: StartEarliest (default), StartLatest or StartTime, in
	// which case StartTime is the time.
	Start     string
	StartTime time.Time
	// DeadLetter is a file that messages which do not map are appended to,
	// as JSON lines; "" for none.
	DeadLetter string
	// TLS, when set, makes connections to the brokers use TLS.
	TLS *KafkaTLS
	// SASL, when set, authenticates connections with SASL.
	SASL *KafkaSASL
	// SchemaRegistry, when set (format map only), decodes values in the
	// Confluent wire format by the registry's schemas before the map.
	SchemaRegistry *KafkaSchemaRegistry
}

// The formats of a kafka source.
const (
	FormatTwice = "twice"
	FormatMap   = "map"
)

// The start positions of a kafka source.
const (
	StartEarliest = "earliest"
	StartLatest   = "latest"
	StartTime     = "time"
)

// DefaultGroup is a kafka source's group when the file gives none.
const DefaultGroup = "twice"

// MapField is one entry of a kafka source's map: the expression that
// computes one field of the event.
type MapField struct {
	// Field is a field name of spec §1 (mapexpr.Fields).
	Field string
	// Expr is the compiled expression.
	Expr *mapexpr.Program
	// Line and Column are where the expression is written, 0 when built
	// in code.
	Line, Column int
}

// Watch configures `twice watch`.
type Watch struct {
	// StateDir holds checkpoints and snapshots; default DefaultStateDir.
	StateDir string
	// Listen is the address of the HTTP API, host:port; default
	// DefaultListen, "" for no HTTP server.
	Listen string
	// CheckpointInterval is how often positions and state are made
	// durable; default 1s.
	CheckpointInterval time.Duration
	// SnapshotInterval is how often the full detector state is written;
	// default 1m.
	SnapshotInterval time.Duration
	// IdleTimeout is how long a partition may go without a message before
	// it stops holding the watermark back; default 5s.
	IdleTimeout time.Duration
	// IdleAdvance lets event time follow the wall clock while every
	// partition is idle, so that deadlines (lost-job, missing-effect)
	// still fire when nothing happens; default true.
	IdleAdvance bool
	// Findings are where findings go, in file order; default one stdout
	// sink. An empty list in the file means no sink (the HTTP API only).
	Findings []Sink
	// Store, when set, is a ClickHouse DSN every event audited is also
	// written to (twice audit --from audits it there later).
	Store string
	// Limits cap the state watch keeps.
	Limits Limits
	// DeadLetterMaxBytes caps each dead-letter file: past it, messages are
	// counted but no longer written. Default 64 MiB, at least 1.
	DeadLetterMaxBytes int64
}

// Sink is one destination of findings.
type Sink struct {
	// Type is SinkStdout, SinkFile, SinkKafka or SinkWebhook.
	Type string
	// Path is the file of a file sink.
	Path string
	// Brokers and Topic are where a kafka sink produces.
	Brokers []string
	Topic   string
	// TLS and SASL secure a kafka sink's connections, as a kafka
	// source's.
	TLS  *KafkaTLS
	SASL *KafkaSASL
	// URL is where a webhook sink posts (it may hold a token: never
	// printed), or URLEnv the environment variable that holds it; Format
	// is "json" (default) or "slack"; Timeout bounds one request (0: the
	// sink's default).
	URL, URLEnv, Format string
	Timeout             time.Duration
	// Line is where the sink is written in the file, 0 when built in code.
	Line int
}

// The sink types.
const (
	SinkStdout = "stdout"
	SinkFile   = "file"
	SinkKafka  = "kafka"
	// SinkWebhook posts revisions to an HTTP endpoint (sidecar/webhooksink).
	SinkWebhook = "webhook"
)

// Limits cap the open state of `twice watch`; 0 means no cap.
type Limits struct {
	MaxJobs       int
	MaxEffectKeys int
	MaxEntities   int
	// MaxIdentities bounds the event identities remembered to recognise
	// repeated deliveries: the last MaxIdentities to twice that many,
	// 8 bytes each; default DefaultMaxIdentities.
	MaxIdentities int
}

// Defaults of the watch section.
const (
	DefaultStateDir           = "./twice-state"
	DefaultListen             = "127.0.0.1:8080"
	DefaultCheckpointInterval = time.Second
	DefaultSnapshotInterval   = time.Minute
	DefaultIdleTimeout        = 5 * time.Second
	DefaultLimit              = 1_000_000
	DefaultMaxIdentities      = 10_000_000
	DefaultDeadLetterMaxBytes = 64 << 20
)

// Rule is one expectation: every job of JobType that succeeds must produce
// Count effects of type Effect with the effect_key EffectKey renders for
// the job, within Within of its job.succeeded.
type Rule struct {
	JobType string
	Effect  string
	// EffectKey renders the effect_key expected of a job. It also links
	// effects of type Effect to the jobs that render their effect_key.
	EffectKey *keytemplate.Template
	// Within defaults to DefaultWithin when the file gives none.
	Within time.Duration
	// Count defaults to 1.
	Count int
	// Line is where the rule is written in the file, 0 when built in code.
	Line int
}

// Detector holds one detector's switch, severity and thresholds; it is
// the detectors package's Settings, so the engine takes it as it is. Every
// entry carries every threshold; each detector reads only its own:
// duplicate-effect MaxPerKey, stale-execution MaxStartDelay, lost-job
// LostAfter, retry-storm Window, Amplification and MinAttempts.
type Detector = detectors.Settings

// Engine tunes the audit engine.
type Engine struct {
	// Lateness is how far behind the latest event time an event may arrive
	// and still be put in order. LatenessUnbounded (the default) bounds
	// the reorder buffer only by ReorderBuffer; a file gives a duration
	// of at least 0.
	Lateness time.Duration
	// ReorderBuffer is the most events held for reordering; default
	// DefaultReorderBuffer, at least 1.
	ReorderBuffer int
	// Horizon is how long, in event time, state for a job, effect key or
	// entity is kept after its last activity; default DefaultHorizon,
	// greater than 0.
	Horizon time.Duration
}

// Defaults that are not detector thresholds.
const (
	// DefaultWithin is a rule's within when the file gives none.
	DefaultWithin = 5 * time.Minute
	// LatenessUnbounded is Engine.Lateness when only ReorderBuffer bounds
	// the reorder buffer.
	LatenessUnbounded time.Duration = -1
	// DefaultReorderBuffer is Engine.ReorderBuffer by default.
	DefaultReorderBuffer = engine.DefaultReorderBuffer
	// DefaultHorizon is Engine.Horizon by default.
	DefaultHorizon = detectors.DefaultHorizon
	// MaxDuration bounds every duration, so that event time plus any
	// deadline stays far inside the range of Unix nanoseconds.
	MaxDuration = 10 * 365 * 24 * time.Hour
)

// thresholdKeys lists the keys each detector takes besides enabled and
// severity.
var thresholdKeys = map[string][]string{
	twicetype.DuplicateEffect: {"max_per_key"},
	twicetype.StaleExecution:  {"max_start_delay"},
	twicetype.LostJob:         {"lost_after"},
	twicetype.RetryStorm:      {"window", "amplification", "min_attempts"},
}

// redactFields are the fields redact may name.
var redactFields = []string{"id", "job_id", "key", "effect_key", "entity", "queue", "job_type", "effect", "error"}

// sourceTypes are the known source types.
var sourceTypes = []string{SourceFile, SourceKafka}

var (
	formats    = []string{FormatTwice, FormatMap, FormatDebezium}
	sinkTypes  = []string{SinkStdout, SinkFile, SinkKafka, SinkWebhook}
	topicName  = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	startWords = []string{StartEarliest, StartLatest}
)

// Default returns the configuration of an empty twice.yaml: no sources, no
// expectations, every detector on with spec §2's defaults, and the watch
// defaults (findings on stdout).
func Default() *Config {
	c := &Config{
		Detectors: make(map[string]Detector, len(twicetype.DetectorIDs)),
		Engine: Engine{
			Lateness:      LatenessUnbounded,
			ReorderBuffer: DefaultReorderBuffer,
			Horizon:       DefaultHorizon,
		},
		Watch: Watch{
			StateDir:           DefaultStateDir,
			Listen:             DefaultListen,
			CheckpointInterval: DefaultCheckpointInterval,
			SnapshotInterval:   DefaultSnapshotInterval,
			IdleTimeout:        DefaultIdleTimeout,
			IdleAdvance:        true,
			Findings:           []Sink{{Type: SinkStdout}},
			Limits:             Limits{MaxJobs: DefaultLimit, MaxEffectKeys: DefaultLimit, MaxEntities: DefaultLimit, MaxIdentities: DefaultMaxIdentities},
			DeadLetterMaxBytes: DefaultDeadLetterMaxBytes,
		},
	}
	defaults := detectors.DefaultSettings()
	for _, id := range twicetype.DetectorIDs {
		c.Detectors[id] = defaults[id]
	}
	return c
}

// Error is one problem in a configuration. Validate leaves File, Line and
// Column empty.
type Error struct {
	File   string
	Line   int
	Column int
	// Path is the key path of the value, such as expect[0].within or
	// detectors.lost-job; "" for the top level.
	Path string
	Msg  string
}

// Error formats the error as "file:line:col: path: msg", leaving out the
// parts that are unknown or empty.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if e.File != "" {
			b.WriteString(":")
		}
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Validate checks a configuration built in code by the rules Parse applies
// to a file. It does not fill in defaults: start from Default. Problems are
// joined with errors.Join.
func (c *Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	names := map[string]int{}
	for i, s := range c.Sources {
		path := fmt.Sprintf("sources[%d]", i)
		if !slices.Contains(sourceTypes, s.Type) && s.Settings == nil {
			add(path+".type", "%s", unknownSourceType(s.Type))
		}
		if s.Name == "" {
			add(path+".name", "empty")
		} else if j, dup := names[s.Name]; dup {
			add(path+".name", "%s", duplicateSource(s.Name, j))
		} else {
			names[s.Name] = i
		}
		switch s.Type {
		case SourceFile:
			if len(s.Paths) == 0 {
				add(path+".paths", "no paths")
			}
			for j, p := range s.Paths {
				if p == "" {
					add(fmt.Sprintf("%s.paths[%d]", path, j), "empty")
				}
			}
			if s.Kafka != nil {
				add(path, "a file source has no Kafka settings")
			}
		case SourceKafka:
			if len(s.Paths) > 0 {
				add(path+".paths", "a kafka source has no paths")
			}
			if s.Kafka == nil {
				add(path, "no Kafka settings")
				continue
			}
			for _, e := range s.Kafka.validate() {
				add(join(path, e.Path), "%s", e.Msg)
			}
		default:
			// A tap's type: its settings check themselves (sources.go).
			if s.Settings != nil {
				for _, e := range settingsErrors(s.Settings.Validate()) {
					add(join(path, e.Path), "%s", e.Msg)
				}
			}
		}
	}
	for i, r := range c.Expect {
		path := fmt.Sprintf("expect[%d]", i)
		if r.JobType == "" {
			add(path+".job_type", "empty")
		}
		if r.Effect == "" {
			add(path+".effect", "empty")
		}
		if r.EffectKey == nil {
			add(path+".effect_key", "no template")
		}
		if msg := checkPositive(r.Within); msg != "" {
			add(path+".within", "%s", msg)
		}
		if msg := checkAtLeast1(r.Count); msg != "" {
			add(path+".count", "%s", msg)
		}
	}
	for _, id := range twicetype.DetectorIDs {
		d, ok := c.Detectors[id]
		path := "detectors." + id
		if !ok {
			add(path, "no entry (start from config.Default())")
			continue
		}
		if d.Severity < twicetype.Low || d.Severity > twicetype.Critical {
			add(path+".severity", "%s", unknownSeverity(d.Severity.String()))
		}
		for _, key := range thresholdKeys[id] {
			if msg := checkThreshold(key, &d); msg != "" {
				add(path+"."+key, "%s", msg)
			}
		}
		if d.Budget != nil {
			for _, m := range checkBudget(id, d.Budget) {
				add(budgetPath(path+".budget", m.key), "%s", m.msg)
			}
		}
	}
	var unknown []string
	for id := range c.Detectors {
		if !slices.Contains(twicetype.DetectorIDs, id) {
			unknown = append(unknown, id)
		}
	}
	slices.Sort(unknown)
	for _, id := range unknown {
		add("detectors", "%s", unknownDetector(id))
	}
	seen := map[string]bool{}
	for i, f := range c.Redact {
		path := fmt.Sprintf("redact[%d]", i)
		if msg := checkRedact(f, seen); msg != "" {
			add(path, "%s", msg)
		}
	}
	checkImpact(c.Impact, add)
	if c.Engine.Lateness < 0 && c.Engine.Lateness != LatenessUnbounded {
		add("engine.lateness", "must not be negative (or LatenessUnbounded), got %v", c.Engine.Lateness)
	}
	if msg := checkAtLeast1(c.Engine.ReorderBuffer); msg != "" {
		add("engine.reorder_buffer", "%s", msg)
	}
	if msg := checkPositive(c.Engine.Horizon); msg != "" {
		add("engine.horizon", "%s", msg)
	}
	for _, e := range c.Watch.validate() {
		add(join("watch", e.Path), "%s", e.Msg)
	}
	return errors.Join(errs...)
}

// validate checks a kafka source; each Error's Path is relative to it.
func (k *KafkaSource) validate() []*Error {
	var errs []*Error
	add := func(path, format string, args ...any) {
		errs = append(errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if len(k.Brokers) == 0 {
		add("brokers", "no brokers")
	}
	for i, b := range k.Brokers {
		if msg := checkBroker(b); msg != "" {
			add(fmt.Sprintf("brokers[%d]", i), "%s", msg)
		}
	}
	if len(k.Topics) == 0 {
		add("topics", "no topics")
	}
	seen := map[string]bool{}
	for i, t := range k.Topics {
		if msg := checkTopic(t, seen); msg != "" {
			add(fmt.Sprintf("topics[%d]", i), "%s", msg)
		}
	}
	if k.Group == "" {
		add("group", "empty")
	}
	switch k.Format {
	case FormatTwice:
		if len(k.Map) > 0 {
			add("map", "%s", msgMapNeedsFormat)
		}
	case FormatDebezium:
		errs = append(errs, k.Debezium.validate()...)
	case FormatMap:
		if len(k.Outputs) > 0 {
			break
		}
		fields := map[string]bool{}
		for _, f := range k.Map {
			switch {
			case !slices.Contains(mapexpr.Fields, f.Field):
				add("map", "%s", unknownMapField(f.Field))
			case fields[f.Field]:
				add("map."+f.Field, "set twice")
			case f.Expr == nil:
				add("map."+f.Field, "no expression")
			}
			fields[f.Field] = true
		}
		for _, f := range requiredMapFields {
			if !fields[f] {
				add("map", "missing %s (every event needs it)", f)
			}
		}
	default:
		add("format", "%s", unknownFormat(k.Format))
	}
	switch k.Start {
	case StartEarliest, StartLatest:
		if !k.StartTime.IsZero() {
			add("start", "StartTime is set but start is %q", k.Start)
		}
	case StartTime:
		if k.StartTime.IsZero() {
			add("start", "StartTime is zero")
		}
	default:
		add("start", "%s", badStart(strconv.Quote(k.Start)))
	}
	errs = append(errs, k.TLS.validate("tls")...)
	errs = append(errs, k.SASL.validate("sasl")...)
	errs = append(errs, k.SchemaRegistry.validate("schema_registry")...)
	if k.SchemaRegistry != nil && k.Format != FormatMap {
		errs = append(errs, &Error{Path: "schema_registry", Msg: msgRegistryNeedsMap})
	}
	return errs
}

// requiredMapFields are the fields a map must set: every event needs them.
var requiredMapFields = []string{"ts", "kind"}

// validate checks a watch section; each Error's Path is relative to it.
func (w *Watch) validate() []*Error {
	var errs []*Error
	add := func(path, format string, args ...any) {
		errs = append(errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if w.StateDir == "" {
		add("state_dir", "empty")
	}
	if w.Listen != "" {
		if msg := checkListen(w.Listen); msg != "" {
			add("listen", "%s", msg)
		}
	}
	for key, d := range map[string]time.Duration{
		"checkpoint_interval": w.CheckpointInterval,
		"snapshot_interval":   w.SnapshotInterval,
		"idle_timeout":        w.IdleTimeout,
	} {
		if msg := checkPositive(d); msg != "" {
			add(key, "%s", msg)
		}
	}
	for i, s := range w.Findings {
		path := fmt.Sprintf("findings[%d]", i)
		switch s.Type {
		case SinkStdout:
		case SinkFile:
			if s.Path == "" {
				add(path+".path", "empty")
			}
		case SinkKafka:
			if len(s.Brokers) == 0 {
				add(path+".brokers", "no brokers")
			}
			for j, b := range s.Brokers {
				if msg := checkBroker(b); msg != "" {
					add(fmt.Sprintf("%s.brokers[%d]", path, j), "%s", msg)
				}
			}
			if msg := checkTopic(s.Topic, nil); msg != "" {
				add(path+".topic", "%s", msg)
			}
			for _, e := range append(s.TLS.validate(path+".tls"), s.SASL.validate(path+".sasl")...) {
				add(e.Path, "%s", e.Msg)
			}
		case SinkWebhook:
			if (s.URL == "") == (s.URLEnv == "") {
				add(path, "give one of url and url_env")
			}
			if s.Format != "" && s.Format != "json" && s.Format != "slack" {
				add(path+".format", "unknown format %q (json, slack)", s.Format)
			}
			if s.Timeout < 0 {
				add(path+".timeout", "negative")
			}
		default:
			add(path+".type", "%s", unknownSinkType(s.Type))
		}
	}
	for key, n := range map[string]int{
		"max_jobs":        w.Limits.MaxJobs,
		"max_effect_keys": w.Limits.MaxEffectKeys,
		"max_entities":    w.Limits.MaxEntities,
		"max_identities":  w.Limits.MaxIdentities,
	} {
		if n < 0 {
			add("limits."+key, "%s", checkAtLeast0(n))
		}
	}
	if w.DeadLetterMaxBytes < 1 {
		add("dead_letter_max_bytes", "must be at least 1, got %d", w.DeadLetterMaxBytes)
	}
	slices.SortFunc(errs, func(a, b *Error) int { return strings.Compare(a.Path, b.Path) })
	return errs
}

func checkAtLeast0(n int) string {
	if n < 0 {
		return fmt.Sprintf("must be at least 0 (0: no cap), got %d", n)
	}
	return ""
}

// checkBroker checks a broker address; "" means valid.
func checkBroker(b string) string {
	host, port, err := net.SplitHostPort(b)
	if err != nil || host == "" || !validPort(port, false) {
		return fmt.Sprintf("want host:port, got %q", b)
	}
	return ""
}

// checkListen checks an HTTP listen address; the host may be empty (all
// interfaces) and the port 0 (any free port).
func checkListen(a string) string {
	_, port, err := net.SplitHostPort(a)
	if err != nil || !validPort(port, true) {
		return fmt.Sprintf("want host:port (or \"\" for no HTTP API), got %q", a)
	}
	return ""
}

func validPort(s string, zero bool) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n <= 65535 && (n > 0 || zero && n == 0) && s == strconv.Itoa(n)
}

// checkTopic checks a topic name against Kafka's rules, and against those
// seen before it when seen is not nil, and records it.
func checkTopic(t string, seen map[string]bool) string {
	if t == "" {
		return "must not be empty"
	}
	if !topicName.MatchString(t) || t == "." || t == ".." {
		return fmt.Sprintf("invalid topic name %q (letters, digits, '.', '_' and '-', at most 249)", t)
	}
	if seen != nil {
		if seen[t] {
			return fmt.Sprintf("topic %q is listed twice", t)
		}
		seen[t] = true
	}
	return ""
}

const msgMapNeedsFormat = "map needs format: map"

func unknownMapField(f string) string {
	return fmt.Sprintf("unknown field %q (known: %s)", f, strings.Join(mapexpr.Fields, ", "))
}

func unknownFormat(f string) string {
	return fmt.Sprintf("unknown format %q (known: %s)", f, strings.Join(formats, ", "))
}

func unknownSinkType(t string) string {
	return fmt.Sprintf("unknown sink type %q (known: %s)", t, strings.Join(sinkTypes, ", "))
}

func badStart(got string) string {
	return "want earliest, latest or an RFC 3339 time, got " + got
}

// checkThreshold checks the detector field that key sets; "" means valid.
func checkThreshold(key string, d *Detector) string {
	switch key {
	case "max_per_key":
		return checkAtLeast1(d.MaxPerKey)
	case "max_start_delay":
		return checkPositive(d.MaxStartDelay)
	case "lost_after":
		return checkPositive(d.LostAfter)
	case "window":
		return checkPositive(d.Window)
	case "amplification":
		return checkAmplification(d.Amplification)
	case "min_attempts":
		return checkAtLeast1(d.MinAttempts)
	}
	return "unknown threshold " + key
}

func checkPositive(d time.Duration) string {
	if d <= 0 {
		return fmt.Sprintf("must be greater than 0, got %v", d)
	}
	if d > MaxDuration {
		return fmt.Sprintf("must be at most %v (ten years), got %v", MaxDuration, d)
	}
	return ""
}

func checkAtLeast1(n int) string {
	if n < 1 {
		return fmt.Sprintf("must be at least 1, got %d", n)
	}
	return ""
}

func checkAmplification(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Sprintf("must be a finite number, got %v", f)
	}
	if f < 1 {
		return fmt.Sprintf("must be at least 1, got %v", f)
	}
	return ""
}

// checkRedact checks one redact entry against the known fields (and
// attrs.NAME paths) and those seen before it, and records it.
func checkRedact(f string, seen map[string]bool) string {
	if name, ok := strings.CutPrefix(f, "attrs."); ok {
		if name == "" || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
			return fmt.Sprintf("want attrs.NAME, got %q", f)
		}
	} else if !slices.Contains(redactFields, f) {
		return fmt.Sprintf("unknown field %q (known: %s, attrs.NAME)", f, strings.Join(redactFields, ", "))
	}
	if seen[f] {
		return fmt.Sprintf("%q is listed twice", f)
	}
	seen[f] = true
	return ""
}

func unknownSourceType(t string) string {
	return fmt.Sprintf("unknown source type %q (known: %s)", t, strings.Join(sourceTypes, ", "))
}

func duplicateSource(name string, first int) string {
	return fmt.Sprintf("duplicate source name %q (also sources[%d])", name, first)
}

func unknownDetector(id string) string {
	return fmt.Sprintf("unknown detector %q (known: %s)", id, strings.Join(twicetype.DetectorIDs, ", "))
}

func unknownSeverity(s string) string {
	return fmt.Sprintf("unknown severity %q (known: critical, high, medium, low)", s)
}
