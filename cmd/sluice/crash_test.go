package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicedata/sluice/internal/testkit"
)

// TestCrashExactlyOnce kills sluice with SIGKILL at seeded random moments
// while records keep arriving, restarts it each time, and then checks that
// every record is in exactly one output row: nothing lost, nothing
// duplicated, whatever the kill interrupted (a flush, an upload, a state
// write, a commit).
func TestCrashExactlyOnce(t *testing.T) {
	crashTest(t, decodeOnly, checkExactlyOnce, false)
}

// TestCrashExactlyOnceS3: the same crashes with the output and the state
// on a real S3 server (conditional writes, multipart).
func TestCrashExactlyOnceS3(t *testing.T) {
	crashTest(t, decodeOnly, checkExactlyOnce, true)
}

// TestCrashDedupe: the same crashes with the dedupe stage: every event id
// is in exactly one row, including duplicates whose original was flushed
// before a crash and which arrive after it (the window is rebuilt from the
// records before the restart offset), and re-run ranges drop exactly what
// their first run dropped.
func TestCrashDedupe(t *testing.T) {
	crashTest(t, decodeOnly+"\n  - {type: dedupe, key: event_id, window: 10m}", checkDeduped, false)
}

func crashTest(t *testing.T, stages string, check func(*testing.T, testkit.Output, generated, map[int32]int64), onS3 bool) {
	if testing.Short() {
		t.Skip("end to end")
	}
	var srv *testkit.S3
	var env []string
	if onS3 {
		srv = testkit.StartS3(t)
		env = srv.Env()
	}
	const topic = "events"
	// A killed member's partitions move once its session expires: keep
	// sessions short so that every restart gets them back quickly.
	kc := testkit.Kafka(t, topic, 3, kfake.GroupMinSessionTimeout(500*time.Millisecond))
	brokers := kc.ListenAddrs()
	out := t.TempDir()
	cfg := writeConfig(t, brokers, topic, "crash", out, stages)
	if onS3 {
		cfg = s3Config(t, cfg, srv, srv.Endpoint, "crash")
		out = srv.Dir("crash")
	}
	// Small rolls: many flushes, so kills land inside them.
	cfg = withRoll(t, cfg, "{max_age: 300ms, max_rows: 700}")
	cfg = rewriteConfig(t, cfg, "session_timeout: 6s", "session_timeout: 1s")

	cycles := 9
	if v, err := strconv.Atoi(os.Getenv("SLUICE_CHAOS_CYCLES")); err == nil && v > 0 {
		cycles = v // make chaos: more kills
	}
	// About 2.3s of production per cycle (30,000 records for 9 cycles), so
	// that every kill lands while records still arrive; each cycle releases
	// its share, so that a slow machine's late cycles still have records to
	// flush (a failpoint on the 5th upload needs five more uploads).
	records := 30000 * max(cycles, 9) / 9
	gate := make(chan struct{}, cycles)
	genDone := make(chan generated, 1)
	go func() {
		genDone <- produceKafkaGoGated(t, brokers[0], topic, records, 31, 350*time.Millisecond, gate, records/cycles)
	}()

	rng := rand.New(rand.NewPCG(2026, 11))
	kills := 0
	// Odd cycles: a failpoint kills the process exactly between two steps
	// of a flush; even cycles: SIGKILL from outside at a random moment.
	points := []string{"upload", "state-pending", "state-done"}
	for i := range cycles {
		gate <- struct{}{}
		before := testkit.ReadOutput(t, out).Total()
		if i%2 == 1 {
			fp := fmt.Sprintf("%s=%d", points[(i/2)%len(points)], 1+rng.IntN(5))
			p := startSluiceEnv(t, append(env, "SLUICE_FAILPOINTS="+fp), "run", "--config", cfg)
			select {
			case <-p.done:
			case <-time.After(60 * time.Second):
				t.Fatalf("failpoint %s never hit", fp)
			}
			if !strings.Contains(p.stderr.String(), "failpoint") {
				t.Fatalf("sluice exited without hitting %s:\n%s", fp, p.stderr.String())
			}
			kills++
			t.Logf("cycle %d: failpoint %s: %d rows so far", i, fp, testkit.ReadOutput(t, out).Total())
			continue
		}
		p := startSluiceEnv(t, env, "run", "--config", cfg)
		// Kill while it works: once it has written something new, at a
		// seeded random moment within the next flushes.
		testkit.WaitFor(t, 30*time.Second, "progress before a kill", func() bool {
			return testkit.ReadOutput(t, out).Total() > before
		})
		wait := time.Duration(rng.IntN(700)) * time.Millisecond
		time.Sleep(wait)
		p.cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Fatal("SIGKILL did not stop sluice")
		}
		kills++
		t.Logf("cycle %d: SIGKILL after %s: %d rows so far", i, wait, testkit.ReadOutput(t, out).Total())
	}
	close(gate)
	var gen generated
	select {
	case gen = <-genDone:
	case <-time.After(time.Duration(1+records/30000) * 90 * time.Second):
		t.Fatal("producer did not finish")
	}
	p := startSluiceEnv(t, env, "run", "--config", cfg)
	want := gen.total
	if stages != decodeOnly {
		want = len(gen.valid) + len(gen.bad) // duplicates dropped
		for _, n := range gen.bad {
			want += n - 1
		}
	}
	testkit.WaitFor(t, 90*time.Second, "all records after the crashes", func() bool {
		return testkit.ReadOutput(t, out).Total() >= want
	})
	time.Sleep(time.Second) // anything extra (a duplicate row) would show now
	p.stop(t)
	res := testkit.ReadAll(t, out)
	check(t, res, gen, testkit.EndOffsets(t, brokers, topic))
	if kills != cycles {
		t.Fatalf("%d kills", kills)
	}
	t.Logf("%d records, %d files after %d kills", gen.total, len(res.Files), kills)
}

// withRoll rewrites the roll line of a config written by writeConfig.
func withRoll(t *testing.T, path, roll string) string {
	t.Helper()
	return rewriteConfig(t, path, "roll: {max_age: 1s, max_rows: 4000}", fmt.Sprintf("roll: %s", roll))
}
