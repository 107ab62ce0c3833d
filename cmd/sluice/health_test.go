package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/testkit"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(addr, path string) (int, string) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHealthAndMetrics: with no reachable broker sluice is live but not
// ready; with one it becomes ready and /metrics reports the pipeline, the
// stages and the Kafka client.
func TestHealthAndMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	// A broker address where nothing listens.
	dead := freeAddr(t)
	addr := freeAddr(t)
	cfg := rewriteConfig(t, writeConfig(t, []string{dead}, "events", "h", t.TempDir(), decodeOnly), "listen: 127.0.0.1:0", "listen: "+addr)
	p := startSluice(t, "run", "--config", cfg)
	testkit.WaitFor(t, 20*time.Second, "/livez", func() bool { c, _ := get(addr, "/livez"); return c == 200 })
	time.Sleep(2 * time.Second)
	if c, body := get(addr, "/readyz"); c != http.StatusServiceUnavailable || !strings.Contains(body, "not joined") {
		t.Errorf("readyz without a broker: %d %q", c, body)
	}
	if _, body := get(addr, "/metrics"); !strings.Contains(body, "sluice_ready 0") {
		t.Error("metrics do not say not ready")
	}
	// The unreachable broker is in the log at WARN with its address and
	// error, once (the next one is due 30 s later), though the client
	// dials it again and again.
	logs := p.stderr.String()
	if n := strings.Count(logs, `level=WARN msg="kafka broker unreachable; retrying" addr=`+dead); n != 1 || !strings.Contains(logs, "connection refused") {
		t.Errorf("%d warnings about the unreachable broker %s, want 1 with the error:\n%s", n, dead, logs)
	}
	p.stop(t)

	kc := testkit.Kafka(t, "events", 2)
	brokers := kc.ListenAddrs()
	gen := produceKafkaGo(t, brokers[0], "events", 1000, 61, 0)
	out := t.TempDir()
	addr = freeAddr(t)
	cfg = rewriteConfig(t, writeConfig(t, brokers, "events", "h", out, decodeOnly), "listen: 127.0.0.1:0", "listen: "+addr)
	p = startSluice(t, "run", "--config", cfg)
	testkit.WaitFor(t, 30*time.Second, "/readyz", func() bool { c, _ := get(addr, "/readyz"); return c == 200 })
	testkit.WaitFor(t, 30*time.Second, "output", func() bool { return testkit.ReadOutput(t, out).Total() >= gen.total })
	_, body := get(addr, "/metrics")
	for _, want := range []string{
		"sluice_records_in_total 1000",
		`sluice_stage_events_total{stage="decode"} 1000`,
		`sluice_consumer_lag_records{partition="0",topic="events"} 0`,
		"sluice_flush_seconds_bucket",
		"sluice_oldest_unflushed_seconds",
		"sluice_buffered_bytes",
		"sluice_kafka_",
		"sluice_ready 1",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	p.stop(t)
	// Every sluice metric the Grafana dashboard queries exists.
	dash, err := os.ReadFile("../../deploy/grafana/sluice.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct{ Targets []struct{ Expr string } }
	}
	if err := json.Unmarshal(dash, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	// Stage metrics that only exist when those stages run.
	optional := regexp.MustCompile(`^sluice_(geo|useragent|dedupe)_`)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, name := range metricName.FindAllString(tg.Expr, -1) {
				if !optional.MatchString(name) && !strings.Contains(body, name) {
					t.Errorf("dashboard queries %s, which /metrics does not have", name)
				}
			}
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}
}

var metricName = regexp.MustCompile(`\bsluice_[a-z_]+`)
