package benchmarks

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/internal/synth"
	"github.com/sluicedata/sluice/internal/testkit"
)

// BenchmarkMemoryBound: sluice as its own process (so its peak RSS is its
// own) consumes 64 partitions whose records carry Kafka timestamps spread
// over 24 hours: up to 64 × 24 files open at once. With only memory
// triggering flushes (rows and age limits out of reach), peak RSS follows
// sink.memory_limit, not the number of open files.
func BenchmarkMemoryBound(b *testing.B) {
	for _, limit := range []string{"32MiB", "128MiB"} {
		b.Run("memory_limit="+limit, func(b *testing.B) { memoryBound(b, limit, 64, 200_000, 24*time.Hour) })
	}
	b.Run("memory_limit=32MiB/one-hour", func(b *testing.B) { memoryBound(b, "32MiB", 64, 200_000, time.Minute) })
}

func freePort(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func metric(addr, name string) int64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return -1
}

func memoryBound(b *testing.B, limit string, partitions int32, n int, spread time.Duration) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "events"))
	if err != nil {
		b.Fatal(err)
	}
	defer kc.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		b.Fatal(err)
	}
	g := synth.New(synth.Options{Seed: 24, DupRate: 0.02, BadRate: 0.005})
	rng := rand.New(rand.NewPCG(1, 2))
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for range n {
		v, _ := g.Append(nil)
		ts := day.Add(time.Duration(rng.Int64N(int64(spread))))
		prod.Produce(context.Background(), &kgo.Record{Topic: "events", Value: v, Timestamp: ts}, nil)
	}
	if err := prod.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	prod.Close()

	bin := testkit.Binary(b)
	b.ResetTimer()
	var peak, beforeDrain int64
	var files int64
	for i := 0; i < b.N; i++ {
		out := b.TempDir()
		listen := freePort(b)
		cfg := filepath.Join(b.TempDir(), "sluice.yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf(`kafka: {brokers: [%s], topics: [events], group: mem-%d}
sink:
  url: file://%s
  roll: {max_rows: 100000000, max_bytes: 1GiB, max_age: 1h}
  memory_limit: %s
  row_group_size: 1MiB
observability: {listen: "%s", log_level: warn, pprof: true}
`, kc.ListenAddrs()[0], i, out, limit, listen)), 0o644)
		cmd := exec.Command(bin, "run", "--config", cfg)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Minute)
		heapDone := false
		for metric(listen, "sluice_records_in_total") < int64(n) {
			if p := os.Getenv("SLUICE_BENCH_HEAP"); p != "" && !heapDone && metric(listen, "sluice_records_in_total") > int64(n)/4 {
				if resp, err := http.Get("http://" + listen + "/debug/pprof/heap"); err == nil {
					f, _ := os.Create(p)
					io.Copy(f, resp.Body)
					f.Close()
					resp.Body.Close()
					heapDone = true
				}
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				b.Fatal("sluice did not consume the records in 5 minutes")
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The peak is read from /proc while the process runs: a child's
		// rusage max RSS can carry the parent's from before exec.
		hwmBefore := vmHWM(cmd.Process.Pid)
		cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		hwm := hwmBefore
	drain:
		for {
			select {
			case err := <-exited:
				if err != nil {
					b.Fatalf("sluice: %v", err)
				}
				break drain
			case <-time.After(10 * time.Millisecond):
				if v := vmHWM(cmd.Process.Pid); v > hwm {
					hwm = v
				}
			}
		}
		peak = max(peak, hwm)
		beforeDrain = max(beforeDrain, hwmBefore)
		entries, _ := filepath.Glob(filepath.Join(out, "events", "*", "*", "*.parquet"))
		files = int64(len(entries))
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(beforeDrain)/(1<<20), "peak-RSS-before-drain-MiB")
	b.ReportMetric(float64(files), "event-files")
	b.ReportMetric(0, "ns/op")
}

// vmHWM is the peak resident set of a running process so far, from
// /proc/PID/status (0 where unavailable).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
