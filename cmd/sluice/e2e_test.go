package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicedata/sluice/internal/synth"
	"github.com/sluicedata/sluice/internal/testkit"
)

// proc is a sluice subprocess.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startSluice(t *testing.T, args ...string) *proc {
	t.Helper()
	return startSluiceEnv(t, nil, args...)
}

// startSluiceEnv starts sluice with env added to the test's environment.
func startSluiceEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(testkit.Binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout = p.stderr
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("sluice output:\n%s", p.stderr.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("sluice exited with %v after SIGTERM", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("sluice did not exit within 60s of SIGTERM")
	}
}

const decodeOnly = "  - {type: decode}"

func writeConfig(t *testing.T, brokers []string, topic, group, out string, stages string) string {
	t.Helper()
	cfg := fmt.Sprintf(`kafka:
  brokers: [%s]
  topics: [%s]
  group: %s
  session_timeout: 6s
stages:
%s
sink:
  url: file://%s
  roll: {max_age: 1s, max_rows: 4000}
observability:
  listen: 127.0.0.1:0
  log_level: debug
shutdown_timeout: 20s
`, strings.Join(brokers, ", "), topic, group, stages, out)
	p := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// generated is what a test produced, by kind.
type generated struct {
	valid   map[string]int // event_id → count (duplicates count twice)
	bad     map[string]int // raw value → count
	records [][]byte       // every value, in order
	total   int
}

// produceKafkaGo writes n synthetic records with segmentio/kafka-go, a
// client library independent of the one sluice uses.
func produceKafkaGo(t *testing.T, addr, topic string, n int, seed uint64, pace time.Duration) generated {
	t.Helper()
	return produceKafkaGoGated(t, addr, topic, n, seed, pace, nil, 0)
}

// produceKafkaGoGated is produceKafkaGo paced by its caller as well as by
// the clock: with a non-nil gate, it sends no record past the ones released
// so far, and each receive from gate releases perGate more (a closed gate
// releases the rest). A test whose steps need records still to arrive —
// a crash cycle waiting for its failpoint — then gets them however slowly
// the machine runs.
func produceKafkaGoGated(t *testing.T, addr, topic string, n int, seed uint64, pace time.Duration, gate <-chan struct{}, perGate int) generated {
	t.Helper()
	w := &kafkago.Writer{
		Addr:         kafkago.TCP(addr),
		Topic:        topic,
		Balancer:     &kafkago.Hash{}, // keyed by event id, like a tracker: a re-send lands on the same partition
		BatchSize:    200,
		BatchTimeout: 5 * time.Millisecond,
		RequiredAcks: kafkago.RequireAll,
	}
	defer w.Close()
	g := synth.New(synth.Options{Seed: seed, DupRate: 0.02, BadRate: 0.01, Start: time.Now().Add(-time.Hour)})
	gen := generated{valid: map[string]int{}, bad: map[string]int{}}
	const chunk = 500
	// Bounded, and long enough for slow paced runs (make chaos).
	bound := 60*time.Second + time.Duration(n/chunk+1)*(pace+time.Second)
	if gate != nil {
		bound += 10 * time.Minute // the caller's steps between releases
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	released := n
	if gate != nil {
		released = 0
	}
	for sent := 0; sent < n; {
		for sent >= released {
			select {
			case _, ok := <-gate:
				released += perGate
				if !ok {
					released = n
				}
			case <-ctx.Done():
				t.Errorf("kafka-go produce: no release after %d records: %v", sent, ctx.Err())
				return gen
			}
		}
		msgs := make([]kafkago.Message, 0, chunk)
		for i := sent; i < min(sent+chunk, n, released); i++ {
			v, kind := g.Append(nil)
			key := v
			if kind == synth.Bad {
				gen.bad[string(v)]++
			} else {
				id := eventID(t, v)
				gen.valid[id]++
				key = []byte(id)
			}
			msgs = append(msgs, kafkago.Message{Key: key, Value: v})
			gen.records = append(gen.records, v)
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			// Errorf, not Fatalf: this may run on a goroutine of its own.
			t.Errorf("kafka-go produce: %v", err)
			return gen
		}
		gen.total += len(msgs)
		sent += len(msgs)
		time.Sleep(pace)
	}
	return gen
}

func eventID(t *testing.T, v []byte) string {
	id := synth.EventID(v)
	if id == nil {
		t.Fatalf("no event_id in %s", v)
	}
	return string(id)
}

// checkExactlyOnce asserts every produced record is in exactly one output
// row, valid ones in events and bad ones in rejected with a reason.
func checkExactlyOnce(t *testing.T, out testkit.Output, gen generated, ends map[int32]int64) {
	t.Helper()
	if out.Total() != gen.total {
		t.Errorf("output has %d rows (%d events, %d rejected), produced %d", out.Total(), len(out.Events), len(out.Rejected), gen.total)
	}
	byLineage := out.CountByLineage()
	for p, end := range ends {
		for off := int64(0); off < end; off++ {
			if n := byLineage[testkit.Lineage{Partition: p, Offset: off}]; n != 1 {
				t.Errorf("partition %d offset %d is in %d rows, want 1", p, off, n)
			}
		}
	}
	ids := map[string]int{}
	for _, r := range out.Events {
		ids[r["event_id"].(string)]++
	}
	for id, n := range gen.valid {
		if ids[id] != n {
			t.Errorf("event %s: %d rows, produced %d", id, ids[id], n)
		}
	}
	raws := map[string]int{}
	for _, r := range out.Rejected {
		if r["stage"] != "decode" || r["error"] == "" {
			t.Errorf("rejected row without stage/reason: %v", r)
		}
		raws[string(r["raw"].([]byte))]++
	}
	for raw, n := range gen.bad {
		if raws[raw] != n {
			t.Errorf("bad record %q: %d rejected rows, produced %d", raw, raws[raw], n)
		}
	}
	for _, f := range out.Files {
		if !fileName.MatchString(f) {
			t.Errorf("file name %s does not follow the layout", f)
		}
	}
}

// checkDeduped asserts the dedupe contract: every distinct valid event id
// in exactly one row, every bad record rejected as often as produced, no
// source record in two rows.
func checkDeduped(t *testing.T, out testkit.Output, gen generated, ends map[int32]int64) {
	t.Helper()
	ids := map[string]int{}
	for _, r := range out.Events {
		ids[r["event_id"].(string)]++
	}
	dups := 0
	for id, n := range gen.valid {
		if ids[id] != 1 {
			t.Errorf("event %s: %d rows, want 1 (produced %d times)", id, ids[id], n)
		}
		dups += n - 1
	}
	if len(ids) != len(gen.valid) {
		t.Errorf("%d distinct event ids in the output, %d produced", len(ids), len(gen.valid))
	}
	raws := map[string]int{}
	for _, r := range out.Rejected {
		raws[string(r["raw"].([]byte))]++
	}
	for raw, n := range gen.bad {
		if raws[raw] != n {
			t.Errorf("bad record %q: %d rejected rows, produced %d", raw, raws[raw], n)
		}
	}
	for l, n := range out.CountByLineage() {
		if n != 1 {
			t.Errorf("partition %d offset %d in %d rows", l.Partition, l.Offset, n)
		}
	}
	if dups == 0 {
		t.Error("the input had no duplicates: the test proves nothing")
	}
	t.Logf("%d records, %d duplicates dropped, %d rows", gen.total, dups, out.Total())
}

// TestEndToEnd: records produced by kafka-go into kfake, sluice run as a
// subprocess with a YAML config, output read back with Arrow.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const topic = "events"
	kc := testkit.Kafka(t, topic, 3)
	brokers := kc.ListenAddrs()
	gen := produceKafkaGo(t, brokers[0], topic, 6000, 11, 0)

	out := t.TempDir()
	p := startSluice(t, "run", "--config", writeConfig(t, brokers, topic, "e2e", out, decodeOnly))
	testkit.WaitFor(t, 60*time.Second, "all records in the output", func() bool {
		return testkit.ReadOutput(t, out).Total() >= gen.total
	})
	p.stop(t)

	ends := testkit.EndOffsets(t, brokers, topic)
	checkExactlyOnce(t, testkit.ReadAll(t, out), gen, ends)
	committed := testkit.Committed(t, brokers, "e2e", topic)
	for part, end := range ends {
		if committed[part] != end {
			t.Errorf("partition %d committed %d, end %d", part, committed[part], end)
		}
	}
	if !strings.Contains(p.stderr.String(), "sluice stopped") {
		t.Error("no clean-stop log line")
	}
}

// TestRestartNothingLost stops sluice with SIGTERM several times while
// records keep arriving; every record ends up in exactly one row.
func TestRestartNothingLost(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const topic = "clicks"
	kc := testkit.Kafka(t, topic, 4)
	brokers := kc.ListenAddrs()
	out := t.TempDir()
	cfg := writeConfig(t, brokers, topic, "restart", out, decodeOnly)

	genDone := make(chan generated, 1)
	go func() { genDone <- produceKafkaGo(t, brokers[0], topic, 20000, 12, 60*time.Millisecond) }()

	for i := range 3 {
		p := startSluice(t, "run", "--config", cfg)
		want := (i + 1) * 3000
		testkit.WaitFor(t, 60*time.Second, fmt.Sprintf("%d rows before restart %d", want, i), func() bool {
			return testkit.ReadOutput(t, out).Total() >= want
		})
		p.stop(t)
	}
	var gen generated
	select {
	case gen = <-genDone:
	case <-time.After(90 * time.Second):
		t.Fatal("producer did not finish")
	}
	p := startSluice(t, "run", "--config", cfg)
	testkit.WaitFor(t, 60*time.Second, "all records after restarts", func() bool {
		return testkit.ReadOutput(t, out).Total() >= gen.total
	})
	p.stop(t)
	checkExactlyOnce(t, testkit.ReadAll(t, out), gen, testkit.EndOffsets(t, brokers, topic))
}

// rewriteConfig replaces old with new in the config at path, in place.
func rewriteConfig(t *testing.T, path, old, new string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("config has no %q", old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
