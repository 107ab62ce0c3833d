package main

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicedata/sluice/internal/testkit"
)

// s3Config points a config at the S3 server (through endpoint).
func s3Config(t *testing.T, path string, srv *testkit.S3, endpoint, prefix string) string {
	t.Helper()
	path = rewriteConfig(t, path, "  url: file://", fmt.Sprintf("  url: %s\n  s3: {endpoint: %q, path_style: true}\n  # was: ", srv.URL(prefix), endpoint))
	return path
}

// TestS3StoreFaults runs sluice against a real S3 server through a proxy
// that injects 5xx answers, connection resets and slow responses, then a
// full outage, then a window where every state write fails after the data
// uploads succeeded, ended by SIGKILL. Throughout, no Kafka offset is
// committed past records that are not in the output; at the end every
// record is in exactly one row.
func TestS3StoreFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	srv := testkit.StartS3(t)
	proxy := testkit.StartFaultProxy(t, srv.Endpoint, 7)
	const topic = "events"
	kc := testkit.Kafka(t, topic, 3, kfake.GroupMinSessionTimeout(500*time.Millisecond))
	brokers := kc.ListenAddrs()
	cfg := writeConfig(t, brokers, topic, "s3faults", "/unused", decodeOnly)
	cfg = s3Config(t, cfg, srv, proxy.URL, "raw")
	cfg = withRoll(t, cfg, "{max_age: 300ms, max_rows: 800}")
	cfg = rewriteConfig(t, cfg, "session_timeout: 6s", "session_timeout: 1s")
	out := srv.Dir("raw")

	genDone := make(chan generated, 1)
	go func() { genDone <- produceKafkaGo(t, brokers[0], topic, 20000, 41, 250*time.Millisecond) }()

	// committedIsWritten: every offset below a committed one is in the
	// output (the invariant "no offset committed past unwritten data").
	committedIsWritten := func(when string) {
		committed := testkit.Committed(t, brokers, "s3faults", topic)
		seen := testkit.ReadOutput(t, out).CountByLineage()
		for p, c := range committed {
			for off := int64(0); off < c; off++ {
				if seen[testkit.Lineage{Partition: p, Offset: off}] == 0 {
					t.Fatalf("%s: partition %d committed %d but offset %d is not in the output", when, p, c, off)
				}
			}
		}
	}

	env := srv.Env()
	p := startSluiceEnv(t, env, "run", "--config", cfg)
	proxy.Set(testkit.Faults{Error503: 0.15, Reset: 0.05, Slow: 0.1})
	testkit.WaitFor(t, 60*time.Second, "output through a flaky store", func() bool { return testkit.ReadOutput(t, out).Total() > 3000 })
	committedIsWritten("flaky store")

	proxy.Set(testkit.Faults{Down: true})
	time.Sleep(3 * time.Second)
	committedIsWritten("store down")
	proxy.Set(testkit.Faults{})
	testkit.WaitFor(t, 60*time.Second, "recovery after the outage", func() bool { return testkit.ReadOutput(t, out).Total() > 6000 })

	// Data uploads succeed, state writes fail: ranges stay pending; then
	// the process dies. The restart must re-run them exactly.
	proxy.Set(testkit.Faults{BlockState: true})
	time.Sleep(2 * time.Second)
	committedIsWritten("state writes failing")
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	proxy.Set(testkit.Faults{Error503: 0.05})

	var gen generated
	select {
	case gen = <-genDone:
	case <-time.After(90 * time.Second):
		t.Fatal("producer did not finish")
	}
	p = startSluiceEnv(t, env, "run", "--config", cfg)
	testkit.WaitFor(t, 90*time.Second, "all records", func() bool { return testkit.ReadOutput(t, out).Total() >= gen.total })
	p.stop(t)
	committedIsWritten("end")
	checkExactlyOnce(t, testkit.ReadAll(t, out), gen, testkit.EndOffsets(t, brokers, topic))
	t.Logf("%d requests through the proxy, %d faults injected", proxy.Requests.Load(), proxy.Injected.Load())
}
