package benchmarks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicedata/sluice/internal/snowplow"
	"github.com/sluicedata/sluice/internal/testkit"
	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/stages/decode"
)

// trackerEvents are n tracker events like the Node tracker's: page views,
// structured events and self-describing events with a base64 context, in
// turn (about 700-900 bytes each as tp2 JSON).
func trackerEvents(n int) []map[string]string {
	ctx, _ := json.Marshal(map[string]any{"schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
		"data": []any{map[string]any{"schema": "iglu:com.gitlab/gitlab_standard/jsonschema/1-0-9",
			"data": map[string]any{"environment": "production", "source": "gitlab-rails", "plan": "free", "namespace_id": 42}}}})
	cx := base64.RawURLEncoding.EncodeToString(ctx)
	out := make([]map[string]string, n)
	for i := range out {
		e := map[string]string{
			"eid": fmt.Sprintf("4f601d33-%04x-4000-8000-%012x", i%65536, i), "p": "srv", "tv": "node-4.8.0", "tna": "sp1",
			"aid": "gitlab", "uid": fmt.Sprintf("user-%d", i%5000), "duid": fmt.Sprintf("duid-%d", i%7000), "sid": "sess-1",
			"dtm": strconv.Itoa(1796153430595 + i), "stm": strconv.Itoa(1796153430601 + i), "cx": cx,
		}
		switch i % 3 {
		case 0:
			e["e"], e["url"], e["page"], e["refr"] = "pv", "https://gitlab.example.com/dashboard/groups", "Groups", "https://www.google.com/"
		case 1:
			e["e"], e["se_ca"], e["se_ac"], e["se_la"], e["se_pr"], e["se_va"] = "se", "projects:new", "click_button", "create", "blank", "1"
		default:
			ue, _ := json.Marshal(map[string]any{"schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
				"data": map[string]any{"schema": "iglu:com.gitlab/custom_event/jsonschema/1-0-0", "data": map[string]any{"name": "merge", "n": i}}})
			e["e"], e["ue_px"] = "ue", base64.RawURLEncoding.EncodeToString(ue)
		}
		out[i] = e
	}
	return out
}

func tp2Body(events []map[string]string) string {
	b, _ := json.Marshal(map[string]any{"schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4", "data": events})
	return string(b)
}

// BenchmarkSnowplowDecode: one op is one event decoded from the Snowplow
// raw stream: "record1" as sluice's collector writes it (a record per
// event), "post10" as Snowplow's collector writes a POST of ten events.
func BenchmarkSnowplowDecode(b *testing.B) {
	evs := trackerEvents(3000)
	for _, per := range []int{1, 10} {
		b.Run(fmt.Sprintf("record%d", per), func(b *testing.B) {
			var recs [][]byte
			var size int64
			for i := 0; i < len(evs); i += per {
				p := snowplow.CollectorPayload{Schema: snowplow.Schema, IPAddress: "81.2.69.142", Timestamp: 1796153430700,
					Encoding: "UTF-8", Collector: "sluice", UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
					Path: "/com.snowplowanalytics.snowplow/tp2", Body: tp2Body(evs[i : i+per])}
				recs = append(recs, p.Marshal(nil))
				size += int64(len(recs[len(recs)-1]))
			}
			s := decode.NewSnowplow(nil)
			batch := &pipeline.Batch{}
			b.ReportAllocs()
			b.SetBytes(size / int64(len(evs)))
			b.ResetTimer()
			perBatch := batchSize / per
			for i := 0; i < b.N; i += perBatch * per {
				j := (i / per) % len(recs)
				k := min(j+perBatch, len(recs))
				fillBatch(batch, recs[j:k], int64(i))
				if err := s.Process(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
				for _, e := range batch.Events {
					if e.State != pipeline.Keep {
						b.Fatalf("rejected: %s", e.RejectReason)
					}
				}
			}
		})
	}
}

// childCPU is the user + system CPU time of process pid (Linux /proc).
func childCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

// childPeakRSS is VmHWM of process pid.
func childPeakRSS(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// startCollector runs `sluice collect` as its own process against brokers.
func startCollector(b *testing.B, brokers []string, maxBuffered string) (*exec.Cmd, string) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf("kafka:\n  brokers: [%s]\ncollect:\n  listen: %s\n  topic: snowplow-raw\n  max_buffered: %s\nobservability:\n  listen: \"\"\n",
		strings.Join(brokers, ","), addr, maxBuffered)
	path := filepath.Join(b.TempDir(), "collect.yaml")
	os.WriteFile(path, []byte(cfg), 0o644)
	cmd := exec.Command(testkit.Binary(b), "collect", "--config", path)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "collecting") {
			go func() {
				for sc.Scan() {
				}
			}()
			return cmd, "http://" + addr
		}
	}
	b.Fatal("collector did not start")
	return nil, ""
}

// drive POSTs ten-event bodies from workers goroutines, b.N requests in
// all, and counts the answers by status.
func drive(b *testing.B, url string, workers int) map[int]int64 {
	evs := trackerEvents(1000)
	bodies := make([][]byte, 100)
	for i := range bodies {
		bodies[i] = []byte(tp2Body(evs[i*10 : i*10+10]))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 30 * time.Second}
	var next atomic.Int64
	var mu sync.Mutex
	codes := map[int]int64{}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				resp, err := client.Post(url+"/com.snowplowanalytics.snowplow/tp2", "application/json; charset=UTF-8", bytes.NewReader(bodies[i%100]))
				code := 0
				if err == nil {
					code = resp.StatusCode
					resp.Body.Close()
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return codes
}

// BenchmarkCollector: one op is one POST of ten tracker events to `sluice
// collect` (its own process), answered after kfake's acknowledgement.
// "keeps-up": events per CPU-second of the collector's process; "overload":
// a broker delaying every produce by 50 ms, 256 concurrent senders and
// collect.max_buffered 1MiB: the answer must be 503s, the memory bounded.
func BenchmarkCollector(b *testing.B) {
	b.Run("keeps-up", func(b *testing.B) {
		kc := testkit.Kafka(b, "snowplow-raw", 8)
		cmd, url := startCollector(b, kc.ListenAddrs(), "64MiB")
		b.ResetTimer()
		cpu0, t0 := childCPU(b, cmd.Process.Pid), time.Now()
		codes := drive(b, url, 32)
		cpu, wall := childCPU(b, cmd.Process.Pid)-cpu0, time.Since(t0)
		b.StopTimer()
		if codes[200] != int64(b.N) {
			b.Fatalf("answers %v", codes)
		}
		b.ReportMetric(float64(10*b.N)/cpu.Seconds(), "events/cpu-s")
		b.ReportMetric(float64(b.N)/wall.Seconds(), "req/s")
		b.ReportMetric(float64(childPeakRSS(b, cmd.Process.Pid))/(1<<20), "peak-MiB")
	})
	b.Run("overload", func(b *testing.B) {
		kc := testkit.Kafka(b, "snowplow-raw", 8)
		kc.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
			kc.KeepControl()
			kc.SleepControl(func() { time.Sleep(50 * time.Millisecond) })
			return nil, nil, false
		})
		cmd, url := startCollector(b, kc.ListenAddrs(), "1MiB")
		b.ResetTimer()
		codes := drive(b, url, 256)
		b.StopTimer()
		if codes[200]+codes[503] != int64(b.N) {
			b.Fatalf("answers %v", codes)
		}
		b.ReportMetric(float64(codes[503])/float64(b.N), "503-share")
		b.ReportMetric(float64(childPeakRSS(b, cmd.Process.Pid))/(1<<20), "peak-MiB")
	})
}
