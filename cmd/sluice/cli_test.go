package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/testkit"
)

var fileName = regexp.MustCompile(`^(events|rejected)/date=\d{4}-\d{2}-\d{2}/hour=\d{2}/[A-Za-z0-9._-]+\+\d+\+\d{20}\+\d{20}\.parquet$`)

func TestValidateListsEveryProblem(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(p, []byte("kafka:\n  brokers: [nohost]\n  start_from: middle\nsink:\n  url: ftp://x\n  compression: brotli\n"), 0o644)
	proc := startSluice(t, "validate", "--config", p)
	err := <-proc.done
	if err == nil || proc.cmd.ProcessState.ExitCode() != 2 {
		t.Fatalf("validate of a bad config: %v, want exit 2", err)
	}
	for _, want := range []string{"kafka.brokers[0]", "kafka.topics", "kafka.start_from", "sink.url", "sink.compression"} {
		if !strings.Contains(proc.stderr.String(), want) {
			t.Errorf("no %s in:\n%s", want, proc.stderr)
		}
	}
	good := filepath.Join(t.TempDir(), "good.yaml")
	os.WriteFile(good, []byte("kafka: {brokers: [k:9092], topics: [e]}\nsink: {url: file:///tmp/x}\n"), 0o644)
	proc = startSluice(t, "validate", "--config", good)
	if err := <-proc.done; err != nil {
		t.Fatalf("good config: %v\n%s", err, proc.stderr)
	}
}

func TestRunUnwritableOutput(t *testing.T) {
	kc := testkit.Kafka(t, "events", 1)
	blocker := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocker, []byte("x"), 0o644)
	cfg := writeConfig(t, kc.ListenAddrs(), "events", "g", filepath.Join(blocker, "out"), decodeOnly)
	proc := startSluice(t, "run", "--config", cfg)
	select {
	case <-proc.done:
	case <-time.After(30 * time.Second):
		t.Fatal("sluice kept running with an unwritable output")
	}
	if proc.cmd.ProcessState.ExitCode() != 2 || !strings.Contains(proc.stderr.String(), "output directory") {
		t.Errorf("exit %d, output:\n%s", proc.cmd.ProcessState.ExitCode(), proc.stderr)
	}
}

func TestInspect(t *testing.T) {
	kc := testkit.Kafka(t, "events", 1)
	brokers := kc.ListenAddrs()
	gen := produceKafkaGo(t, brokers[0], "events", 300, 5, 0)
	out := t.TempDir()
	p := startSluice(t, "run", "--config", writeConfig(t, brokers, "events", "g", out, decodeOnly))
	testkit.WaitFor(t, 60*time.Second, "output", func() bool { return testkit.ReadOutput(t, out).Total() >= gen.total })
	p.stop(t)
	files := testkit.ReadAll(t, out).Files
	ip := startSluice(t, "inspect", "--rows", "2", filepath.Join(out, files[0]))
	if err := <-ip.done; err != nil {
		t.Fatal(err)
	}
	s := ip.stderr.String()
	for _, want := range []string{"event_time           timestamp[ms, tz=UTC]", "row 1:", "src_offset"} {
		if !strings.Contains(s, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, s)
		}
	}
}

// TestRunRefusesMissingKeyAndGeoDB: no key and no GeoIP file are config
// errors at start, both reported at once, and never a default key.
func TestRunRefusesMissingKeyAndGeoDB(t *testing.T) {
	kc := testkit.Kafka(t, "events", 1)
	stages := "  - {type: decode}\n  - {type: geo, database: /nonexistent/GeoLite2-City.mmdb}\n  - {type: pseudonymize, key_env: SLUICE_TEST_UNSET_KEY, key_id: k1}"
	cfg := writeConfig(t, kc.ListenAddrs(), "events", "g", t.TempDir(), stages)
	for _, cmd := range []string{"validate", "run"} {
		proc := startSluice(t, cmd, "--config", cfg)
		select {
		case <-proc.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s kept running without a key", cmd)
		}
		out := proc.stderr.String()
		if proc.cmd.ProcessState.ExitCode() != 2 || !strings.Contains(out, "stages[1].database") ||
			!strings.Contains(out, "SLUICE_TEST_UNSET_KEY is not set") {
			t.Errorf("%s: exit %d, output:\n%s", cmd, proc.cmd.ProcessState.ExitCode(), out)
		}
	}
}
