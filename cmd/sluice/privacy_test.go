package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicedata/sluice/internal/testkit"
)

// TestEnrichedOutputHasNoRawPII runs every enrichment stage end to end and
// scans every string column of the output for the raw user ids and IPs the
// test produced: none may appear. Pseudonyms are checked against an
// independent HMAC, geo against the test database's known answers.
func TestEnrichedOutputHasNoRawPII(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const topic = "events"
	const key = "e2e-pseudonym-key-0123456789"
	kc := testkit.Kafka(t, topic, 2)
	brokers := kc.ListenAddrs()
	gen := produceKafkaGo(t, brokers[0], topic, 3000, 21, 0)

	// One record with every identifier in a known form.
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers[0]), Topic: topic, RequiredAcks: kafkago.RequireAll}
	known := `{"event_id":"known-1","event":"signup","ts":"2026-03-01T10:00:00Z","user_id":4242424242,"ip":"81.2.69.142","user_agent":"curl/8.5.0","session_id":"sess-secret","properties":{"email":"jane@example.com","plan":"pro"}}`
	if err := w.WriteMessages(t.Context(), kafkago.Message{Value: []byte(known)}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	gen.total++

	// The raw identifiers in the input.
	var rawIDs, rawIPs []string
	for _, rec := range gen.records {
		var m map[string]any
		if json.Unmarshal(rec, &m) != nil {
			continue
		}
		switch id := m["user_id"].(type) {
		case string:
			rawIDs = append(rawIDs, id)
		case float64:
			rawIDs = append(rawIDs, fmt.Sprintf("%.0f", id))
		}
		if ip, ok := m["ip"].(string); ok && ip != "not-an-ip" {
			rawIPs = append(rawIPs, ip)
		}
	}
	rawIDs = append(rawIDs, "4242424242", "sess-secret", "jane@example.com")
	rawIPs = append(rawIPs, "81.2.69.142")
	if len(rawIDs) < 1000 || len(rawIPs) < 1000 {
		t.Fatalf("too few identifiers to test with: %d ids, %d ips", len(rawIDs), len(rawIPs))
	}

	geoPath := testkit.GeoDB(t, testkit.GeoNetworks, 1)
	stages := fmt.Sprintf(`  - {type: decode}
  - {type: geo, database: %s}
  - {type: useragent}
  - {type: pseudonymize, key_env: E2E_PSEUDO_KEY, key_id: k2026, fields: [session_id, properties.email]}`, geoPath)
	out := t.TempDir()
	p := startSluiceEnv(t, []string{"E2E_PSEUDO_KEY=" + key}, "run", "--config", writeConfig(t, brokers, topic, "privacy", out, stages))
	testkit.WaitFor(t, 60*time.Second, "all records", func() bool { return testkit.ReadOutput(t, out).Total() >= gen.total })
	p.stop(t)
	res := testkit.ReadAll(t, out)
	if res.Total() != gen.total {
		t.Fatalf("%d rows for %d records", res.Total(), gen.total)
	}

	raw := map[string]bool{}
	for _, v := range append(rawIDs, rawIPs...) {
		raw[v] = true
	}
	leaks := 0
	scan := func(where string, rows []testkit.Row, skip string) {
		for _, r := range rows {
			for col, v := range r {
				s, ok := v.(string)
				if !ok || col == skip {
					continue
				}
				if raw[s] {
					leaks++
					t.Errorf("%s.%s holds the raw identifier %q", where, col, s)
				}
				if col == "properties" || col == "extra" {
					for id := range raw {
						if strings.Contains(s, `"`+id+`"`) || strings.Contains(s, ":"+id+",") || strings.Contains(s, ":"+id+"}") {
							leaks++
							t.Errorf("%s.%s contains the raw identifier %q: %s", where, col, id, s)
						}
					}
				}
			}
			if leaks > 10 {
				t.FailNow()
			}
		}
	}
	scan("events", res.Events, "")
	scan("rejected", res.Rejected, "raw") // raw keeps the bytes of invalid records, by design

	mac := func(s string) string {
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte(s))
		return hex.EncodeToString(m.Sum(nil))
	}
	var found bool
	withGeo, withUA, withPseudo := 0, 0, 0
	for _, r := range res.Events {
		if r["geo_country_code"] != nil {
			withGeo++
		}
		if r["ua_device_class"] != nil {
			withUA++
		}
		if r["user_pseudo_id"] != nil {
			withPseudo++
		}
		if r["event_id"] != "known-1" {
			continue
		}
		found = true
		want := map[string]any{
			"user_pseudo_id": mac("4242424242"), "pseudo_key_id": "k2026", "session_id": mac("sess-secret"),
			"ip_anonymized": "81.2.69.0", "geo_city": "London", "geo_region_code": "ENG", "geo_country": "United Kingdom",
			"ua_device_class": "bot", "ua_is_bot": true,
			"properties": `{"email":"` + mac("jane@example.com") + `","plan":"pro"}`,
		}
		for col, w := range want {
			if r[col] != w {
				t.Errorf("known record %s = %v, want %v", col, r[col], w)
			}
		}
	}
	if !found {
		t.Error("known record not in the output")
	}
	n := len(res.Events)
	if withGeo < n/2 || withUA < n/2 || withPseudo < n/2 {
		t.Errorf("enrichment too sparse: %d events, %d with geo, %d with UA, %d with pseudonyms", n, withGeo, withUA, withPseudo)
	}
}
