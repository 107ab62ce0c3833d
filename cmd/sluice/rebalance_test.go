package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicedata/sluice/internal/testkit"
)

// TestRebalanceAndZombie: two sluice processes in one group on S3. The
// second joins mid-stream; then the first is paused (SIGSTOP) until its
// session expires and its partitions move, and resumed (SIGCONT): it is a
// zombie and must not write state or commit. Then the second is stopped.
// Every record ends up in exactly one row.
func TestRebalanceAndZombie(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	srv := testkit.StartS3(t)
	const topic = "events"
	kc := testkit.Kafka(t, topic, 4, kfake.GroupMinSessionTimeout(500*time.Millisecond))
	brokers := kc.ListenAddrs()
	cfg := writeConfig(t, brokers, topic, "rebalance", "/unused", decodeOnly)
	cfg = s3Config(t, cfg, srv, srv.Endpoint, "raw")
	cfg = withRoll(t, cfg, "{max_age: 2s, max_rows: 100000}")
	cfg = rewriteConfig(t, cfg, "session_timeout: 6s", "session_timeout: 2s")
	out := srv.Dir("raw")
	env := srv.Env()

	genDone := make(chan generated, 1)
	go func() { genDone <- produceKafkaGo(t, brokers[0], topic, 24000, 51, 250*time.Millisecond) }()

	a := startSluiceEnv(t, env, "run", "--config", cfg)
	testkit.WaitFor(t, 60*time.Second, "first member writing", func() bool { return testkit.ReadOutput(t, out).Total() > 1000 })
	b := startSluiceEnv(t, env, "run", "--config", cfg)
	testkit.WaitFor(t, 60*time.Second, "second member assigned", func() bool {
		return strings.Contains(b.stderr.String(), "partition assigned")
	})

	// Pause A while it holds buffered records (2s age flushes), long
	// enough for its session to expire and B to take everything.
	a.cmd.Process.Signal(syscall.SIGSTOP)
	testkit.WaitFor(t, 60*time.Second, "partitions moving to the second member", func() bool {
		return strings.Count(b.stderr.String(), "partition assigned") >= 4
	})
	time.Sleep(3 * time.Second) // B flushes and moves the state
	a.cmd.Process.Signal(syscall.SIGCONT)
	time.Sleep(3 * time.Second)
	aLog := a.stderr.String()
	if !strings.Contains(aLog, "partition state moved by another member") && !strings.Contains(aLog, "partition lost") {
		t.Errorf("the resumed member neither lost its partitions nor was fenced:\n%s", aLog)
	}
	a.stop(t)

	var gen generated
	select {
	case gen = <-genDone:
	case <-time.After(90 * time.Second):
		t.Fatal("producer did not finish")
	}
	testkit.WaitFor(t, 90*time.Second, "all records", func() bool { return testkit.ReadOutput(t, out).Total() >= gen.total })
	b.stop(t)
	checkExactlyOnce(t, testkit.ReadAll(t, out), gen, testkit.EndOffsets(t, brokers, topic))
	t.Logf("zombie log lines: fenced=%v lost=%v", strings.Contains(aLog, "partition state moved"), strings.Contains(aLog, "partition lost"))
}
