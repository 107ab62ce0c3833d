package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/config"
	"github.com/sluicedata/sluice/pipeline"
)

// TestStageConfigErrors: every problem of every stage entry in one run,
// each naming its key, from the stage packages' own Configs.
func TestStageConfigErrors(t *testing.T) {
	c, err := config.Parse([]byte(`
kafka: {brokers: [k:9092], topics: [e]}
sink: {url: file:///x}
stages:
  - {type: decode, cache_size: 5}
  - {type: geo, anonymize_ipv4_bits: 40, reload_interval: 10ms}
  - {type: useragent, database: /x.mmdb}
  - {type: pseudonymize, key_env: K, key_file: /f, fields: [ip]}
  - {type: dedupe, key: "event_id,ip", windw: 1m}
  - {type: filter}
  - {type: bogus}
`))
	if err != nil {
		t.Fatal(err)
	}
	err = validateConfig(c)
	for _, w := range []string{
		"stages[0].cache_size: unknown key (line 5)",
		"stages[1].database: the path of a MaxMind",
		"stages[1].anonymize_ipv4_bits: 40 is not in [0, 32]",
		"stages[1].reload_interval: must be at least 1s",
		"stages[2].database: unknown key (line 7)",
		"stages[3].key_env: set exactly one of key_env and key_file",
		"stages[3].key_id: a key id is required",
		`stages[3].fields[0]: "ip"`,
		"stages[4].windw: unknown key (line 9)",
		"stages[5].drop_events: the filter has no rule",
		`stages[6].type: "bogus" is not a stage type (decode, dedupe, filter, geo, pseudonymize, useragent)`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	c.Stages = []config.Stage{parseStage(t, "{type: decode}"), parseStage(t, "{type: filter, drop_bots: true}"), parseStage(t, "{type: useragent}")}
	if err := validateConfig(c); err == nil || !strings.Contains(err.Error(), "stages[1].drop_bots: needs the useragent stage before the filter") {
		t.Errorf("bot filter before useragent: %v", err)
	}
	c.Stages[1], c.Stages[2] = c.Stages[2], c.Stages[1]
	if err := validateConfig(c); err != nil {
		t.Errorf("bot filter after useragent: %v", err)
	}
	c.Stages = c.Stages[:0]
	for _, y := range []string{"{type: decode}", "{type: pseudonymize}"} {
		c.Stages = append(c.Stages, parseStage(t, y))
	}
	if err := validateConfig(c); err == nil || !strings.Contains(err.Error(), "stages[1].key_env: a key is required") {
		t.Errorf("no key: %v", err)
	}
	c.Stages[1] = parseStage(t, "{type: pseudonymize, keys: [{id: a, env: A}, {id: b, file: /b}], active_key: c}")
	if err := validateConfig(c); err == nil || !strings.Contains(err.Error(), `stages[1].active_key: "c" is not the id`) {
		t.Errorf("bad active key: %v", err)
	}
	c.Stages[1] = parseStage(t, "{type: pseudonymize, keys: [{id: a, env: A}, {id: b, file: /b}], active_key: b}")
	if err := validateConfig(c); err != nil {
		t.Errorf("key rotation config: %v", err)
	}
}

func parseStage(t *testing.T, y string) config.Stage {
	t.Helper()
	c, err := config.Parse([]byte("stages:\n  - " + y + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return c.Stages[0]
}

// TestFilterStageFromConfig: the filter of a config drops what it says,
// through the table.
func TestFilterStageFromConfig(t *testing.T) {
	c := config.Default()
	c.Stages = []config.Stage{parseStage(t, "{type: decode}"), parseStage(t, "{type: filter, drop_events: [heartbeat]}")}
	set, err := buildStages(c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer set.close()
	stages, err := set.factory("events", 0)
	if err != nil || len(stages) != 2 {
		t.Fatal(stages, err)
	}
	b := &pipeline.Batch{Events: []pipeline.Event{
		{Raw: []byte(`{"event_id":"a","event":"heartbeat","ts":1}`)},
		{Raw: []byte(`{"event_id":"b","event":"page_view","ts":1}`)},
	}}
	for _, s := range stages {
		if err := s.Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if b.Events[0].State != pipeline.Dropped || b.Events[1].State != pipeline.Keep || set.filter.ByName.Load() != 1 {
		t.Errorf("states %d %d, dropped %d", b.Events[0].State, b.Events[1].State, set.filter.ByName.Load())
	}
}

// TestDeprecatedPseudonymCacheSize: a config that still sets the
// pseudonym cache's size starts, with a warning naming the key.
func TestDeprecatedPseudonymCacheSize(t *testing.T) {
	c, err := config.Parse([]byte("stages:\n  - {type: decode}\n  - {type: pseudonymize, key_env: K, key_id: k1, cache_size: 1000}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	env := func(k string) (string, bool) { return "0123456789abcdef0123", k == "K" }
	if _, err := buildStages(c, log, env); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "cache_size is deprecated and ignored") || !strings.Contains(logs.String(), "cache_size=1000") {
		t.Errorf("no deprecation warning: %q", logs.String())
	}
}
