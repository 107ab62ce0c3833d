package config

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultsNeedOnlyBrokersTopicsAndURL(t *testing.T) {
	c, err := Parse([]byte("kafka: {brokers: [k:9092], topics: [events]}\nsink: {url: file:///tmp/x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("minimal config invalid: %v", err)
	}
	if c.Kafka.Group != "sluice" || c.Sink.Compression != "zstd" || c.Sink.Roll.MaxAge.D() != 5*time.Minute ||
		c.Sink.Roll.MaxBytes != 128<<20 || c.Sink.MemoryLimit != 512<<20 || c.ShutdownTimeout.D() != 30*time.Second ||
		len(c.Stages) != 1 || c.Stages[0].Type != "decode" {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestFullConfig(t *testing.T) {
	c, err := Load("testdata/full.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Sink.Roll.MaxBytes != 64<<20 || c.Sink.MemoryLimit != 1<<30 || c.Sink.Rejected != "off" ||
		c.Kafka.SessionTimeout.D() != 30*time.Second || len(c.Kafka.Brokers) != 2 {
		t.Errorf("parsed %+v", c)
	}
}

// TestValidateReportsEveryProblem: one run names every bad key.
func TestValidateReportsEveryProblem(t *testing.T) {
	c, err := Load("testdata/bad.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("bad config validated")
	}
	for _, key := range []string{
		"kafka.brokers[0]:", "kafka.topics[0]:", "kafka.start_from:", "kafka.session_timeout:",
		"stages[1].type:", "sink.url:", "sink.compression:", "sink.zstd_level:", "sink.roll.max_rows:", "sink.roll.max_age:",
		"sink.rejected:", "observability.log_level:",
	} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("no problem reported for %s in:\n%v", key, err)
		}
	}
}

func TestUnknownKeysNamedWithLine(t *testing.T) {
	_, err := Parse([]byte("kafka:\n  brokers: [k:9092]\n  topic: [x]\nsink:\n  roll: {max_size: 1}\nstages:\n  - {type: decode, windw: 1m}\nbogus: 1\n"))
	if err == nil {
		t.Fatal("unknown keys accepted")
	}
	for _, want := range []string{"kafka.topic: unknown key (line 3)", "sink.roll.max_size: unknown key (line 5)", "bogus: unknown key (line 8)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

func TestBadValueTypes(t *testing.T) {
	for _, y := range []string{"shutdown_timeout: soon\n", "sink: {memory_limit: lots}\n", "kafka: {max_poll_records: many}\n"} {
		if _, err := Parse([]byte(y)); err == nil {
			t.Errorf("%q accepted", y)
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	c := Default()
	err := c.ApplyEnv([]string{
		"SLUICE_KAFKA_BROKERS=a:1, b:2",
		"SLUICE_KAFKA_TOPICS=events",
		"SLUICE_SINK_URL=file:///env",
		"SLUICE_SINK_ROLL_MAX_AGE=90s",
		"SLUICE_SINK_MEMORY_LIMIT=256MiB",
		"SLUICE_KAFKA_MAX_POLL_RECORDS=77",
		"SLUICE_PSEUDONYM_KEY=secret-not-a-key",
		"OTHER=1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Kafka.Brokers, ",") != "a:1,b:2" || c.Sink.URL != "file:///env" ||
		c.Sink.Roll.MaxAge.D() != 90*time.Second || c.Sink.MemoryLimit != 256<<20 || c.Kafka.MaxPollRecords != 77 {
		t.Errorf("overrides not applied: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("env-only config invalid: %v", err)
	}
	err = c.ApplyEnv([]string{"SLUICE_SINK_ROLL_MAX_AGE=later", "SLUICE_KAFKA_MAX_POLL_RECORDS=x"})
	if err == nil || !strings.Contains(err.Error(), "sink.roll.max_age (from SLUICE_SINK_ROLL_MAX_AGE)") ||
		!strings.Contains(err.Error(), "kafka.max_poll_records (from SLUICE_KAFKA_MAX_POLL_RECORDS)") {
		t.Errorf("bad env values: %v", err)
	}
}

func TestEnvKeysCoverLeaves(t *testing.T) {
	keys := map[string]string{}
	for _, kv := range EnvKeys() {
		keys[kv[0]] = kv[1]
	}
	if keys["sink.roll.max_bytes"] != "SLUICE_SINK_ROLL_MAX_BYTES" || keys["shutdown_timeout"] != "SLUICE_SHUTDOWN_TIMEOUT" {
		t.Errorf("env keys: %v", keys)
	}
	if _, ok := keys["stages"]; ok {
		t.Error("stages must not be env-overridable")
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "1KiB": 1024, "128MiB": 128 << 20, "1GB": 1e9, "2 GiB": 2 << 30, "10B": 10} {
		var b ByteSize
		if err := b.parse(in); err != nil || int64(b) != want {
			t.Errorf("%q: got %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "MiB", "10PB", "99999999999GiB"} {
		var b ByteSize
		if err := b.parse(in); err == nil {
			t.Errorf("%q accepted as %d", in, b)
		}
	}
}

func TestStageOrder(t *testing.T) {
	c := Default()
	c.Kafka.Brokers, c.Kafka.Topics, c.Sink.URL = []string{"k:1"}, []string{"t"}, "file:///x"
	c.Stages = nil
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "stages:") {
		t.Errorf("empty stage list: %v", err)
	}
	c.Stages = []Stage{{Type: "geo"}, {Type: "decode"}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "stages[1].type: decode must be the first stage") {
		t.Errorf("geo before decode: %v", err)
	}
	c.Stages = []Stage{{Type: "decode"}, {}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "stages[1].type: required") {
		t.Errorf("no type: %v", err)
	}
}

// TestStageKeys: an entry keeps its own keys for its stage's package, which
// reads them with unknown keys reported by name and line.
func TestStageKeys(t *testing.T) {
	c, err := Parse([]byte("kafka: {brokers: [k:9092], topics: [e]}\nsink: {url: file:///x}\nstages:\n  - {type: decode}\n  - type: geo\n    database: /x.mmdb\n    databse: typo\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Stages) != 2 || c.Stages[1].Type != "geo" {
		t.Fatalf("stages %+v", c.Stages)
	}
	var geo struct {
		Database string `yaml:"database"`
	}
	err = c.Stages[1].Decode(&geo)
	if err == nil || !strings.Contains(err.Error(), "databse: unknown key (line 7)") {
		t.Errorf("unknown key: %v", err)
	}
	var ok struct {
		Database string `yaml:"database"`
		Databse  string `yaml:"databse"`
	}
	if err := c.Stages[1].Decode(&ok); err != nil || ok.Database != "/x.mmdb" {
		t.Errorf("decode: %v %+v", err, ok)
	}
	if err := c.Stages[0].Decode(&geo); err != nil {
		t.Errorf("an entry without keys: %v", err)
	}
	st, err := NewStage("geo", ok)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Database string `yaml:"database"`
		Databse  string `yaml:"databse"`
	}
	if err := st.Decode(&back); err != nil || back != ok {
		t.Errorf("NewStage round trip: %v %+v", err, back)
	}
}

// TestSinkURLWithoutQueryOrFragment: a '#' or '?' in a sink URL would cut
// the path short (file:///data/run#2 is /data/run): refused, named.
func TestSinkURLWithoutQueryOrFragment(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"file:///data/run", true},
		{"file:///data/run%232", true},
		{"s3://bucket/prefix", true},
		{"file:///data/run#2", false},
		{"file:///data/run#", false},
		{"file:///data/run?x=1", false},
		{"file:///data/run?", false},
		{"s3://bucket/prefix?versionId=1", false},
	} {
		c, err := Parse([]byte("kafka: {brokers: [k:9092], topics: [events]}\nsink: {url: \"" + tc.url + "\"}\n"))
		if err != nil {
			t.Fatal(err)
		}
		err = c.Validate()
		if tc.ok && err != nil {
			t.Errorf("%s refused: %v", tc.url, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "sink.url:") || !strings.Contains(err.Error(), "fragment")) {
			t.Errorf("%s: want a sink.url problem naming the query or fragment, got %v", tc.url, err)
		}
	}
}
