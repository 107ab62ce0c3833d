package benchmarks

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/internal/geodb"
	"github.com/sluicedata/sluice/internal/synth"
	"github.com/sluicedata/sluice/internal/testkit"
)

// refResult is one configuration of the reference benchmark.
type refResult struct {
	Name          string  `json:"name"`
	Workload      string  `json:"workload"`
	Partitions    int32   `json:"partitions"`
	GOMAXPROCS    int     `json:"gomaxprocs"`
	Events        int     `json:"events"`
	EventsPerSec  float64 `json:"events_per_s"`
	EventsPerCPU  float64 `json:"events_per_cpu_s"`
	InputMBPerSec float64 `json:"input_mb_per_s"`
	AllocsPerEvt  float64 `json:"allocs_per_event"`
	// AllocBytesEvt is the bytes allocated per event and GCs the
	// collector's cycles over the run: under a memory limit they are
	// what the collector's share of the CPU follows.
	AllocBytesEvt float64 `json:"alloc_bytes_per_event"`
	GCs           float64 `json:"gc_cycles"`
	PeakRSSMiB    float64 `json:"peak_rss_mib"`
	FileBytesEvt  float64 `json:"file_bytes_per_event"`
	// Calibration is the same run's calibration (encoding/json decoding
	// each event of the workload into a map, one goroutine) in events per
	// CPU-second; XCalibration = EventsPerCPU / Calibration.
	Calibration  float64 `json:"calibration_events_per_cpu_s"`
	XCalibration float64 `json:"x_calibration"`
	// SysShare is the part of the CPU time spent in the kernel (system
	// time: reading the broker's socket, writing and syncing files).
	SysShare float64            `json:"sys_share"`
	CPUShare map[string]float64 `json:"cpu_share,omitempty"`
	// Runs is how many times the configuration ran (SLUICE_BENCH_REPEAT,
	// interleaved with the others of its group). A summary (refSummary)
	// gives the medians of EventsPerSec, EventsPerCPU, Calibration and
	// XCalibration over the runs (each run's ratio to its own
	// calibration), the other figures of the run with the median
	// EventsPerCPU, and every run's figures in the fields below.
	Runs       int       `json:"runs,omitempty"`
	RunsPerCPU []float64 `json:"events_per_cpu_s_runs,omitempty"`
	RunsXCal   []float64 `json:"x_calibration_runs,omitempty"`
	RunsCalib  []float64 `json:"calibration_runs,omitempty"`
	// Paired is, for 64 partitions and the 256 MiB budget, the ratio of
	// each run's events per CPU-second to that of the 8-partition,
	// GOMAXPROCS 2 run of the same build and repetition (run beside it),
	// and PairedMedian their median: the targets' ratios without the
	// machine's drift between the runs of a configuration.
	Paired       []float64 `json:"paired_vs_8_partitions,omitempty"`
	PairedMedian float64   `json:"paired_vs_8_partitions_median,omitempty"`
}

var refResults []refResult

// generator is what both workloads' generators are.
type generator interface {
	Append(dst []byte) ([]byte, synth.Kind)
}

// benchWorkload is one workload of BenchmarkReference: its records and
// its GeoIP database.
type benchWorkload struct {
	name string
	gen  func() generator
	geo  func() []geodb.Record
}

var benchWorkloads = []benchWorkload{
	// reference: ~520 bytes of JSON, a few hundred user agents drawn
	// uniformly, 4,096 /24 GeoIP networks, 50,000 users.
	{"reference", func() generator {
		return synth.New(synth.Options{Seed: 2026, DupRate: 0.02, BadRate: 0.005, Reference: true})
	}, func() []geodb.Record { return geodb.ReferenceRecords(synth.ReferenceNetworks()) }},
	// tracker: like real tracker traffic (synth.Tracker): sessions, a
	// nested context object in most events, ~530 user agents and
	// 130,000 IPv4 and IPv6 networks drawn by a Zipf law, 1,000,000 users.
	{"tracker", func() generator {
		return synth.NewTracker(synth.TrackerOptions{Seed: 2026, DupRate: 0.02, BadRate: 0.005})
	}, func() []geodb.Record { return geodb.TrackerRecords() }},
}

// refRuns numbers the runs of this process: each has a consumer group of
// its own (a group's committed offsets would make a repeated run start at
// the end).
var refRuns int

// BenchmarkReference is the throughput benchmark of issue "throughput":
// each workload (SLUICE_BENCH_WORKLOADS, default reference,tracker; SLUICE_BENCH_EVENTS
// records, default 1,000,000, 2% duplicates, 0.5% bad) preloaded into an
// in-process broker; sluice runs as its own process with every stage
// (decode, geo, useragent, pseudonymize, dedupe) into zstd Parquet on
// local disk, at 1, 8 and 64 partitions and in the 256 MiB budget. Its
// CPU, memory and allocations are its own (from /proc and its /metrics),
// not the broker's. SLUICE_BENCH_LENGTHS (default 100000,10000000; "-"
// for none) adds runs of the reference workload at 8 partitions of those
// lengths: per-event CPU must not grow with the run.
// SLUICE_BENCH_REPEAT (default 1; make bench 3) runs each configuration of
// a group that many times, the variants interleaved (before, after,
// before, after, ...), and reports the medians (refSummary): a shared
// machine's speed moves by tens of percent within a run, and a median of
// paired runs is what one can compare. One op is one whole run.
func BenchmarkReference(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("SLUICE_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	// budget: in a 256 MiB container sluice caps sink.memory_limit at a
	// sixteenth (16 MiB) and gives the Go runtime a soft limit of 80%
	// (cmd/sluice planMemory); the benchmark sets the same two values.
	type refConfig struct {
		parts  int32
		procs  int
		budget bool
		events int
	}
	name := func(w string, c refConfig) string {
		n := fmt.Sprintf("workload=%s/partitions=%d/gomaxprocs=%d", w, c.parts, c.procs)
		if c.budget {
			n += "/budget=256MiB"
		}
		if c.events != 0 {
			n += fmt.Sprintf("/events=%d", c.events)
		}
		return n
	}
	key := func(c refConfig) string {
		k := fmt.Sprintf("%d/%d", c.parts, c.procs)
		if c.budget {
			k += "/256MiB"
		}
		return k
	}
	repeat := 1
	if v, err := strconv.Atoi(os.Getenv("SLUICE_BENCH_REPEAT")); err == nil && v > 0 {
		repeat = v
	}
	only := os.Getenv("SLUICE_BENCH_CONFIGS") // e.g. "8/2,64/2,8/2/256MiB": partitions/gomaxprocs[/budget]
	workloads := strings.Split(cmp.Or(os.Getenv("SLUICE_BENCH_WORKLOADS"), "reference,tracker"), ",")
	for _, w := range benchWorkloads {
		if !slices.Contains(workloads, w.name) {
			continue
		}
		geoPath := filepath.Join(b.TempDir(), w.name+"-city.mmdb")
		if err := geodb.Write(geoPath, w.geo(), 1); err != nil {
			b.Fatal(err)
		}
		// A group's configurations run interleaved, each on a broker
		// preloaded with the same records in its partition count: 64
		// partitions sits with 8's so that their ratio (a target) pairs
		// runs minutes apart at most, not a group apart.
		groups := [][]refConfig{
			{{1, 2, false, 0}},
			{{8, 1, false, 0}, {8, 2, false, 0}, {8, 2, true, 0}, {64, 2, false, 0}},
		}
		if w.name == "reference" {
			for _, l := range strings.Split(cmp.Or(os.Getenv("SLUICE_BENCH_LENGTHS"), "100000,10000000"), ",") {
				if v, err := strconv.Atoi(l); err == nil && v > 0 && v != n {
					groups = append(groups, []refConfig{{8, 2, false, v}})
				}
			}
		}
		for _, group := range groups {
			var run []refConfig
			for _, c := range group {
				if only == "" || slices.Contains(strings.Split(only, ","), key(c)) {
					run = append(run, c)
				}
			}
			if len(run) == 0 {
				continue
			}
			events := cmp.Or(group[0].events, n)
			brokers := map[int32]*kfake.Cluster{}
			var size int64
			for _, c := range run {
				if brokers[c.parts] == nil {
					brokers[c.parts], size = preloadReference(b, w, c.parts, events)
				}
			}
			type variant struct {
				c    refConfig
				name string
				bin  string
			}
			var variants []variant
			for _, c := range run {
				// SLUICE_BENCH_BEFORE: another sluice binary (an earlier
				// build) run on the same data right before this one, for
				// before/after figures from one run.
				if before := os.Getenv("SLUICE_BENCH_BEFORE"); before != "" && c.events == 0 {
					variants = append(variants, variant{c, name(w.name, c) + "/before", before})
				}
				variants = append(variants, variant{c, name(w.name, c), ""})
			}
			for rep := range repeat {
				for _, v := range variants {
					if rep > 0 && v.c.events != 0 {
						continue // the run-length rows: once
					}
					c, name := v.c, v.name
					b.Run(name, func(b *testing.B) {
						var r refResult
						for i := 0; i < b.N; i++ {
							// One profiled run per configuration: profiling
							// costs a few percent, the median is robust to it.
							prof := c.parts == 8 && c.procs == 2 && !c.budget && c.events == 0
							if v := os.Getenv("SLUICE_BENCH_PROFILE"); v != "" {
								prof = v == name
							}
							prof = prof && rep == repeat-1
							r = runReference(b, v.bin, brokers[c.parts], c.parts, c.procs, c.budget, events, size, geoPath, prof)
						}
						r.Name, r.Workload = name, w.name
						r.Calibration = calibration(b, w, events)
						r.XCalibration = r.EventsPerCPU / r.Calibration
						refResults = append(refResults, r)
						b.ReportMetric(r.XCalibration, "x-calibration")
						b.ReportMetric(r.Calibration, "calibration-events/cpu-s")
						b.ReportMetric(r.EventsPerSec, "events/s")
						b.ReportMetric(r.EventsPerCPU, "events/cpu-s")
						b.ReportMetric(r.InputMBPerSec, "input-MB/s")
						b.ReportMetric(r.AllocsPerEvt, "allocs/event")
						b.ReportMetric(r.AllocBytesEvt, "alloc-B/event")
						b.ReportMetric(r.GCs, "gc-cycles")
						b.ReportMetric(r.PeakRSSMiB, "peak-RSS-MiB")
						b.ReportMetric(r.FileBytesEvt, "file-B/event")
						b.ReportMetric(0, "ns/op")
					})
				}
			}
			for _, kc := range brokers {
				kc.Close()
			}
		}
	}
	writeReferenceReport(b)
}

// calibrationEvents bounds the calibration's sample: a rate per event
// needs no more (250,000 events of a workload's generator are the same
// mix as its 1,000,000), and a 10,000,000-event run would hold them all.
const calibrationEvents = 250_000

// calibration is what this machine does in one CPU-second of the plain
// approach: encoding/json decoding each of the workload's events (its
// first min(n, calibrationEvents)) into a map[string]any, one goroutine
// (Throughput II's yardstick). Measured in each run, right after it, so
// that a figure and its yardstick see the same machine state, and in a
// process of its own (this test binary again, TestCalibrationProcess):
// in this one, the collector's cycles would scan the broker's preloaded
// records and whatever the earlier runs left.
func calibration(b *testing.B, w benchWorkload, n int) float64 {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestCalibrationProcess$", "-test.count", "1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("SLUICE_BENCH_CALIBRATE=%s:%d", w.name, min(n, calibrationEvents)))
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("calibration: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, calibrationLine); ok {
			rate, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || rate <= 0 {
				b.Fatalf("calibration printed %q", line)
			}
			return rate
		}
	}
	b.Fatalf("calibration printed no rate:\n%s", out)
	return 0
}

// calibrationLine prefixes the rate the calibration's process prints.
const calibrationLine = "calibration events per CPU-second: "

// TestCalibrationProcess is the calibration's process (run by calibration,
// with SLUICE_BENCH_CALIBRATE=workload:events; skipped otherwise): it
// generates the events, then decodes each into a map with encoding/json,
// and prints events per CPU-second of this process.
func TestCalibrationProcess(t *testing.T) {
	spec := os.Getenv("SLUICE_BENCH_CALIBRATE")
	if spec == "" {
		t.Skip("the calibration's own process (BenchmarkReference runs it)")
	}
	name, count, _ := strings.Cut(spec, ":")
	n, err := strconv.Atoi(count)
	i := slices.IndexFunc(benchWorkloads, func(w benchWorkload) bool { return w.name == name })
	if err != nil || n <= 0 || i < 0 {
		t.Fatalf("SLUICE_BENCH_CALIBRATE=%q: want <workload>:<events>", spec)
	}
	g := benchWorkloads[i].gen()
	recs := make([][]byte, n)
	for i := range recs {
		recs[i], _ = g.Append(nil)
	}
	runtime.GC()
	t0 := cpuTime()
	ok := 0
	for _, r := range recs {
		var m map[string]any
		if json.Unmarshal(r, &m) == nil {
			ok++
		}
	}
	cpu := cpuTime() - t0
	if ok == 0 {
		t.Fatal("calibration decoded nothing")
	}
	fmt.Printf("%s%.1f\n", calibrationLine, float64(n)/cpu.Seconds())
}

func preloadReference(b *testing.B, w benchWorkload, parts int32, n int) (*kfake.Cluster, int64) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(parts, "events"))
	if err != nil {
		b.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	g := w.gen()
	var size int64
	for range n {
		v, _ := g.Append(nil)
		size += int64(len(v))
		prod.Produce(context.Background(), &kgo.Record{Topic: "events", Key: synth.EventID(v), Value: v}, nil)
	}
	if err := prod.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	return kc, size
}

// procCPU is a running process's user and system CPU time from /proc.
func procCPU(pid int) (user, sys time.Duration) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut) * time.Second / 100, time.Duration(st) * time.Second / 100 // USER_HZ
}

func metricF(addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return -1
}

func runReference(b *testing.B, bin string, kc *kfake.Cluster, parts int32, procs int, budget bool, n int, size int64, geoPath string, prof bool) refResult {
	refRuns++
	before := bin != ""
	if !before {
		bin = testkit.Binary(b)
	}
	out := urlSafeTempDir(b)
	listen := freePort(b)
	cfg := filepath.Join(b.TempDir(), "sluice.yaml")
	sinkExtra, env := "", []string{}
	if budget {
		sinkExtra = ", memory_limit: 16MiB"
		env = append(env, fmt.Sprintf("GOMEMLIMIT=%d", (256<<20)/5*4))
	}
	os.WriteFile(cfg, []byte(fmt.Sprintf(`kafka: {brokers: [%s], topics: [events], group: ref-%d-%d-%v-%v-%d-%d}
stages:
  - {type: decode}
  - {type: geo, database: %s}
  - {type: useragent}
  - {type: pseudonymize, key_env: BENCH_KEY, key_id: k1}
  - {type: dedupe, key: event_id, window: 10m}
sink: {url: "file://%s"%s}
observability: {listen: "%s", log_level: warn, pprof: true}
`, kc.ListenAddrs()[0], parts, procs, budget, before, os.Getpid(), refRuns, geoPath, out, sinkExtra, listen)), 0o644)
	cmd := exec.Command(bin, "run", "--config", cfg)
	cmd.Env = append(os.Environ(), "BENCH_KEY=reference-benchmark-key-0123456789", fmt.Sprintf("GOMAXPROCS=%d", procs))
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	pid := cmd.Process.Pid
	deadline := time.Now().Add(10 * time.Minute)
	// wait polls cond (a scrape of sluice's /metrics) every poll. A
	// scrape costs the measured process CPU and allocations (Prometheus
	// gathers every metric: hundreds of objects): polled every 5 ms for
	// the whole run, the scrapes were over half of all objects allocated
	// in a 1-partition run (heap profile) and put it over 2 allocations
	// per event. Only the clock's start needs the fine poll.
	wait := func(what string, poll time.Duration, cond func() bool) {
		for !cond() {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				b.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(poll)
		}
	}
	const coarse = 50 * time.Millisecond
	// The clock starts at the first record: group join is not throughput.
	wait("first records", 5*time.Millisecond, func() bool { return metricF(listen, "sluice_records_in_total") > 0 })
	t0 := time.Now()
	user0, sys0 := procCPU(pid)
	allocs0 := metricF(listen, "go_memstats_mallocs_total")
	bytes0, gcs0 := metricF(listen, "go_memstats_alloc_bytes_total"), metricF(listen, "go_gc_duration_seconds_count")
	var share map[string]float64
	if prof {
		// Steady state: warm caches, every partition busy.
		wait("a third of the records", coarse, func() bool { return metricF(listen, "sluice_records_in_total") >= float64(n)/3 })
		share = cpuShare(b, listen)
	}
	if dir := os.Getenv("SLUICE_BENCH_HEAP"); dir != "" && prof {
		// A heap profile near the end, when the most output is buffered.
		wait("90% of the records", coarse, func() bool { return metricF(listen, "sluice_records_in_total") >= float64(n)*0.9 })
		saveHeapProfile(b, listen, dir)
	}
	wait("all records", coarse, func() bool { return metricF(listen, "sluice_records_in_total") >= float64(n) })
	allocs1 := metricF(listen, "go_memstats_mallocs_total")
	bytes1, gcs1 := metricF(listen, "go_memstats_alloc_bytes_total"), metricF(listen, "go_gc_duration_seconds_count")
	cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	hwm := vmHWM(pid)
	for done := false; !done; {
		select {
		case err := <-exited:
			if err != nil {
				b.Fatalf("sluice: %v", err)
			}
			done = true
		case <-time.After(10 * time.Millisecond):
			hwm = max(hwm, vmHWM(pid))
		}
	}
	wall := time.Since(t0) // drain included: files are written when it ends
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	sys := time.Duration(ru.Stime.Nano()) - sys0
	cpu := time.Duration(ru.Utime.Nano()) - user0 + sys
	return refResult{
		Partitions: parts, GOMAXPROCS: procs, Events: n,
		EventsPerSec:  float64(n) / wall.Seconds(),
		EventsPerCPU:  float64(n) / cpu.Seconds(),
		InputMBPerSec: float64(size) / 1e6 / wall.Seconds(),
		AllocsPerEvt:  (allocs1 - allocs0) / float64(n),
		AllocBytesEvt: (bytes1 - bytes0) / float64(n),
		GCs:           gcs1 - gcs0,
		PeakRSSMiB:    float64(hwm) / (1 << 20),
		FileBytesEvt:  float64(dirBytes(b, filepath.Join(out, "events"))+dirBytes(b, filepath.Join(out, "rejected"))) / float64(n),
		SysShare:      sys.Seconds() / cpu.Seconds(),
		CPUShare:      share,
	}
}

// urlSafeTempDir is a new directory for a file:// sink URL, removed at
// the end: b.TempDir's name follows the benchmark's, and a repeated
// sub-benchmark's name ends in "#01", which a URL reads as a fragment.
func urlSafeTempDir(b *testing.B) string {
	dir, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// saveHeapProfile writes the running sluice's heap profile into dir.
func saveHeapProfile(b *testing.B, listen, dir string) {
	resp, err := http.Get("http://" + listen + "/debug/pprof/heap?gc=1")
	if err != nil {
		b.Logf("heap profile: %v", err)
		return
	}
	defer resp.Body.Close()
	os.MkdirAll(dir, 0o755)
	f, err := os.Create(filepath.Join(dir, "heap.pb.gz"))
	if err != nil {
		b.Logf("heap profile: %v", err)
		return
	}
	defer f.Close()
	io.Copy(f, resp.Body)
}

// cpuShare takes a 2-second CPU profile (profiling costs a few percent:
// that configuration's other figures carry it) of the running sluice and splits
// its samples by the innermost frame that belongs to a known part.
func cpuShare(b *testing.B, listen string) map[string]float64 {
	secs := 2
	if v, err := strconv.Atoi(os.Getenv("SLUICE_BENCH_PROFILE_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", listen, secs))
	if err != nil {
		b.Logf("profile: %v", err)
		return nil
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Logf("profile: %v", err)
		return nil
	}
	if dir := os.Getenv("SLUICE_BENCH_CPUPROFILE"); dir != "" {
		// The raw profile too, for go tool pprof.
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "cpu.pb.gz"), raw, 0o644)
	}
	p, err := profile.Parse(bytes.NewReader(raw))
	if err != nil {
		b.Logf("profile: %v", err)
		return nil
	}
	parts := []struct{ key, name string }{
		{"stages/decode", "decode"}, {"valyala/fastjson", "decode"},
		{"stages/geo", "geo"}, {"maxminddb", "geo"},
		{"stages/useragent", "useragent"}, {"mssola/useragent", "useragent"},
		{"stages/pseudonymize", "pseudonymize"}, {"crypto/", "pseudonymize"},
		{"stages/dedupe", "dedupe"}, {"zeebo/xxh3", "dedupe"},
		{"klauspost/compress/zstd", "parquet (zstd)"},
		{"sinks/parquet", "parquet (encode)"}, {"parquet-go", "parquet (encode)"},
		{"sinks/objstore", "store"},
		{"franz-go", "kafka client"}, {"klauspost/compress/s2", "kafka client"},
		{"runtime.gcBgMarkWorker", "GC"}, {"runtime.mallocgc", "allocation"},
	}
	total := 0.0
	byPart := map[string]float64{}
	for _, s := range p.Sample {
		v := float64(s.Value[len(s.Value)-1])
		total += v
		part := "other"
	stack:
		for _, loc := range s.Location {
			for _, line := range loc.Line {
				for _, pt := range parts {
					if line.Function != nil && strings.Contains(line.Function.Name, pt.key) {
						part = pt.name
						break stack
					}
				}
			}
		}
		byPart[part] += v
	}
	for k := range byPart {
		byPart[k] /= total
	}
	return byPart
}

// writeReferenceReport writes benchmarks/out/reference.json and the chart
// benchmarks/reference.svg (events per CPU-second per configuration).
func writeReferenceReport(b *testing.B) {
	if len(refResults) == 0 {
		return
	}
	sums := refSummary(refResults)
	pairRuns(sums)
	os.MkdirAll("out", 0o755)
	js, _ := json.MarshalIndent(sums, "", "  ")
	os.WriteFile("out/reference.json", js, 0o644)
	os.WriteFile("reference.svg", []byte(barChart("sluice end to end, every stage: events per CPU-second ÷ calibration (encoding/json into a map), median of runs; grey = build before", sums)), 0o644)
	for _, r := range sums {
		b.Logf("%s: %.0f events per CPU-second, %.2f× calibration (median of %d: %s), %.0f%% system time", r.Name, r.EventsPerCPU, r.XCalibration, r.Runs, fmtRuns(r.RunsXCal), 100*r.SysShare)
		if r.Paired != nil {
			b.Logf("%s vs 8 partitions, paired runs: %.2f (%s)", r.Name, r.PairedMedian, fmtRuns(r.Paired))
		}
	}
	for _, r := range sums {
		if r.CPUShare == nil {
			continue
		}
		keys := make([]string, 0, len(r.CPUShare))
		for k := range r.CPUShare {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return r.CPUShare[keys[i]] > r.CPUShare[keys[j]] })
		var sb strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&sb, " %s %.1f%%;", k, 100*r.CPUShare[k])
		}
		b.Logf("CPU split (%s):%s", r.Name, sb.String())
	}
}

// refSummary gives one result per configuration (in the order of their
// first runs): the medians over its runs (see refResult.Runs).
func refSummary(rs []refResult) []refResult {
	var order []string
	runs := map[string][]refResult{}
	for _, r := range rs {
		if _, ok := runs[r.Name]; !ok {
			order = append(order, r.Name)
		}
		runs[r.Name] = append(runs[r.Name], r)
	}
	var out []refResult
	for _, name := range order {
		rr := runs[name]
		var perCPU, perSec, xcal, calib []float64
		for _, r := range rr {
			perCPU, perSec = append(perCPU, r.EventsPerCPU), append(perSec, r.EventsPerSec)
			xcal, calib = append(xcal, r.XCalibration), append(calib, r.Calibration)
		}
		// The other figures (memory, allocations, the profile) of the run
		// nearest the median.
		mid := median(perCPU)
		s := rr[0]
		for _, r := range rr {
			if math.Abs(r.EventsPerCPU-mid) < math.Abs(s.EventsPerCPU-mid) {
				s = r
			}
		}
		for _, r := range rr {
			if r.CPUShare != nil {
				s.CPUShare = r.CPUShare
			}
		}
		s.EventsPerCPU, s.EventsPerSec = mid, median(perSec)
		s.XCalibration, s.Calibration = median(xcal), median(calib)
		s.InputMBPerSec = rr[0].InputMBPerSec * s.EventsPerSec / rr[0].EventsPerSec
		s.Runs, s.RunsPerCPU, s.RunsXCal, s.RunsCalib = len(rr), perCPU, xcal, calib
		out = append(out, s)
	}
	return out
}

// pairRuns fills Paired and PairedMedian of the 64-partition and budget
// summaries from the runs of the 8-partition, GOMAXPROCS 2 summary of the
// same workload and build: the i-th runs of a group ran in one round.
func pairRuns(sums []refResult) {
	base := func(name string) string {
		name = strings.Replace(name, "/partitions=64/", "/partitions=8/", 1)
		return strings.Replace(name, "/budget=256MiB", "", 1)
	}
	byName := map[string]*refResult{}
	for i := range sums {
		byName[sums[i].Name] = &sums[i]
	}
	for i := range sums {
		r := &sums[i]
		if !strings.Contains(r.Name, "/partitions=64/") && !strings.Contains(r.Name, "/budget=") {
			continue
		}
		b := byName[base(r.Name)]
		if b == nil || len(b.RunsPerCPU) != len(r.RunsPerCPU) {
			continue
		}
		r.Paired = make([]float64, len(r.RunsPerCPU))
		for j := range r.RunsPerCPU {
			r.Paired[j] = r.RunsPerCPU[j] / b.RunsPerCPU[j]
		}
		r.PairedMedian = median(r.Paired)
	}
}

// median is the median of v (not empty).
func median(v []float64) float64 {
	v = slices.Sorted(slices.Values(v))
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// fmtRuns lists the runs' ratios, e.g. "1.98 2.05 2.11".
func fmtRuns(v []float64) string {
	var sb strings.Builder
	for i, x := range v {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%.2f", x)
	}
	return sb.String()
}

// barChart is a small SVG bar chart, no dependencies: each configuration's
// events per CPU-second as a multiple of its calibration (the absolute
// figure beside it), with the 2.0× target.
func barChart(title string, rs []refResult) string {
	const w, barH, gap, left, target = 900, 22, 8, 430, 2.0
	h := 60 + len(rs)*(barH+gap) + 30
	maxV := target
	for _, r := range rs {
		maxV = max(maxV, r.XCalibration)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&sb, `<rect width="100%%" height="100%%" fill="white"/><text x="10" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", title)
	scale := float64(w-left-150) / maxV
	for i, r := range rs {
		y := 45 + i*(barH+gap)
		color := "#3b7dd8"
		if strings.HasSuffix(r.Name, "/before") {
			color = "#9aa5b1"
		}
		fmt.Fprintf(&sb, `<text x="10" y="%d">%s</text>`+"\n", y+barH/2+4, strings.TrimPrefix(r.Name, "workload="))
		fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="%.0f" height="%d" fill="%s"/>`+"\n", left, y, r.XCalibration*scale, barH, color)
		fmt.Fprintf(&sb, `<text x="%.0f" y="%d">%.2f× (%.0f/CPU-s)</text>`+"\n", float64(left)+r.XCalibration*scale+6, y+barH/2+4, r.XCalibration, r.EventsPerCPU)
	}
	tx := float64(left) + target*scale
	fmt.Fprintf(&sb, `<line x1="%.0f" y1="38" x2="%.0f" y2="%d" stroke="#d33" stroke-dasharray="4 3"/><text x="%.0f" y="%d" fill="#d33">target 2.0 × calibration</text>`+"\n", tx, tx, h-25, tx-60, h-8)
	sb.WriteString("</svg>\n")
	return sb.String()
}
