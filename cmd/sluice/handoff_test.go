package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicedata/sluice/internal/arrowread"
	"github.com/sluicedata/sluice/internal/synth"
	"github.com/sluicedata/sluice/internal/testkit"
	"github.com/sluicedata/sluice/pipeline/handoff"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
)

// handoffRecord is one produced record of the hand-off test and what the
// pipeline must make of it.
type handoffRecord struct {
	partition int32
	time      time.Time
	value     []byte
	kind      string // event, rejected, duplicate, filtered
}

// TestHandoffEndToEnd: four partitions (the fourth idle), records over
// three Kafka hours, two replicas on S3 and a SIGKILL of one of them in
// the middle. Each hour's two manifests appear exactly once, only when
// every file of the hour is there (the hour's files equal the manifest's
// the moment it appears, and never change after), and they reconcile with
// what was produced. The notification and dead-letter topics, read with
// segmentio/kafka-go, announce every file and manifest and hold every bad
// record with its headers. DuckDB over the generated DDL skips the
// manifests.
func TestHandoffEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	srv := testkit.StartS3(t)
	const topic, dlq, notify = "events", "sluice-dlq", "sluice-notify"
	kc := testkit.Kafka(t, topic, 4, kfake.GroupMinSessionTimeout(500*time.Millisecond), kfake.SeedTopics(1, dlq, notify))
	brokers := kc.ListenAddrs()
	cfg := writeConfig(t, brokers, topic, "handoff", "/unused",
		decodeOnly+"\n  - {type: dedupe, key: event_id, window: 24h}\n  - {type: filter, drop_events: [scroll]}")
	cfg = s3Config(t, cfg, srv, srv.Endpoint, "raw")
	cfg = withRoll(t, cfg, "{max_age: 500ms, max_rows: 150}\n  complete_after: 15s\n  notify_topic: "+notify)
	cfg = rewriteConfig(t, cfg, "session_timeout: 6s", "session_timeout: 1s\n  dead_letter_topic: "+dlq)
	out := srv.Dir("raw")
	env := srv.Env()

	// Three hours ending at least an hour ago, 300 records per active
	// partition and hour, in time order per partition.
	base := time.Now().UTC().Truncate(time.Hour).Add(-4 * time.Hour)
	recs := handoffRecords(base, 300)
	half := len(recs) / 2

	produceAt(t, brokers[0], topic, recs[:half])
	a := startSluiceEnv(t, env, "run", "--config", cfg)
	b := startSluiceEnv(t, env, "run", "--config", cfg)
	testkit.WaitFor(t, 60*time.Second, "output before the kill", func() bool { return testkit.ReadOutput(t, out).Total() > 300 })
	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.done
	produceAt(t, brokers[0], topic, recs[half:])
	a2 := startSluiceEnv(t, env, "run", "--config", cfg)

	// Watch the manifests appear: each must list exactly the hour's files
	// at that moment.
	hours := []int64{base.Unix() / 3600, base.Unix()/3600 + 1, base.Unix()/3600 + 2}
	seen := map[string]handoff.Manifest{}
	deadline := time.Now().Add(3 * time.Minute)
	for len(seen) < 2*len(hours) {
		if time.Now().After(deadline) {
			t.Fatalf("manifests after 3 minutes: %d of %d", len(seen), 2*len(hours))
		}
		for _, h := range hours {
			for _, o := range []string{"events", "rejected"} {
				key := handoff.ManifestKey(o, h)
				if _, ok := seen[key]; ok {
					continue
				}
				data, err := os.ReadFile(filepath.Join(out, key))
				if err != nil {
					continue
				}
				var m handoff.Manifest
				if err := json.Unmarshal(data, &m); err != nil {
					t.Fatalf("%s: %v", key, err)
				}
				seen[key] = m
				checkManifestFiles(t, out, key, m)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.stop(t)
	a2.stop(t)

	// After the run: still exactly the listed files, and the counts.
	final := testkit.ReadAll(t, out)
	want := expectedCounts(recs)
	for key, m := range seen {
		checkManifestFiles(t, out, key, m)
		if m.SchemaFingerprint != pqsink.SchemaFingerprint(m.Output) {
			t.Errorf("%s: fingerprint %s", key, m.SchemaFingerprint)
		}
		h := hourOfKey(t, key)
		if len(m.Partitions) != 4 {
			t.Errorf("%s reconciles %d partitions, want 4", key, len(m.Partitions))
		}
		for _, p := range m.Partitions {
			if got, w := p.Counts, want[[2]int64{h, int64(p.Partition)}]; got != w {
				t.Errorf("%s partition %d: %+v, produced %+v", key, p.Partition, got, w)
			}
			if !p.Balanced() {
				t.Errorf("%s partition %d does not balance: %+v", key, p.Partition, p.Counts)
			}
		}
		logs := a.stderr.String() + b.stderr.String() + a2.stderr.String()
		if n := strings.Count(logs, `manifest="`+key+`"`); n != 1 {
			t.Errorf("%s created %d times, want 1", key, n)
		}
	}
	var events, rejected int64
	for _, r := range recs {
		switch r.kind {
		case "event":
			events++
		case "rejected":
			rejected++
		}
	}
	if int64(len(final.Events)) != events || int64(len(final.Rejected)) != rejected {
		t.Errorf("output: %d events, %d rejected; want %d and %d", len(final.Events), len(final.Rejected), events, rejected)
	}

	// A second client library reads what sluice announced and dead-lettered.
	notices := readTopic(t, brokers[0], notify)
	announced := map[string]bool{}
	for _, m := range notices {
		var n struct{ Type, ID, Key string }
		if err := json.Unmarshal(m.Value, &n); err != nil || n.ID != n.Key || string(m.Key) != n.ID {
			t.Fatalf("notice %s: %v", m.Value, err)
		}
		announced[n.Type+" "+n.Key] = true
	}
	for _, f := range final.Files {
		if !announced["file "+f] {
			t.Errorf("file %s never announced", f)
		}
	}
	for key := range seen {
		if !announced["hour "+key] {
			t.Errorf("manifest %s never announced", key)
		}
	}
	// Every bad record, by its lineage, at least once; the value as it was.
	bad := map[[2]string]int{} // (partition, value) → produced
	for _, r := range recs {
		if r.kind == "rejected" {
			bad[[2]string{strconv.Itoa(int(r.partition)), string(r.value)}]++
		}
	}
	lineage := map[[2]string]map[string]bool{} // (partition, value) → offsets
	for _, m := range readTopic(t, brokers[0], dlq) {
		h := map[string]string{}
		for _, hd := range m.Headers {
			h[hd.Key] = string(hd.Value)
		}
		if h["sluice-stage"] != "decode" || h["sluice-error"] == "" || h["sluice-src-topic"] != topic || h["sluice-src-offset"] == "" {
			t.Errorf("dead letter headers %v", h)
		}
		k := [2]string{h["sluice-src-partition"], string(m.Value)}
		if bad[k] == 0 {
			t.Errorf("dead letter %q (partition %s) was not a bad record of that partition", m.Value, k[0])
			continue
		}
		if lineage[k] == nil {
			lineage[k] = map[string]bool{}
		}
		lineage[k][h["sluice-src-offset"]] = true
	}
	for k, n := range bad {
		if len(lineage[k]) != n {
			t.Errorf("bad record %q of partition %s: %d distinct offsets in the dead-letter topic, produced %d", k[1], k[0], len(lineage[k]), n)
		}
	}

	// DuckDB over the generated DDL: the manifests are not data.
	ddl, err := pqsink.DDL("duckdb", "file://"+out)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(ddl); err != nil {
		t.Fatalf("DDL: %v", err)
	}
	var n int64
	if err := db.QueryRow("SELECT count(*) FROM events").Scan(&n); err != nil || n != events {
		t.Errorf("DuckDB counts %d events (%v), want %d", n, err, events)
	}

	// The operator's view: sluice status says the three hours are complete
	// with their manifests; inspect reads a listed file from S3.
	st := runSluice(t, env, "status", "--config", cfg, "--hours", "6")
	for key := range seen {
		if !strings.Contains(st, key) {
			t.Errorf("status does not show %s:\n%s", key, st)
		}
	}
	if !strings.Contains(st, "complete through") || !strings.Contains(st, "4 partitions") {
		t.Errorf("status:\n%s", st)
	}
	t.Logf("sluice status:\n%s", st)
	f := seen[handoff.ManifestKey("events", hours[0])].Files[0]
	insp := runSluice(t, env, "inspect", "--s3-endpoint", srv.Endpoint, "--s3-path-style", srv.URL("raw/"+f.Key))
	if !strings.Contains(insp, fmt.Sprintf("rows:       %d in", f.Rows)) {
		t.Errorf("inspect of s3://…/%s:\n%s", f.Key, insp)
	}
	t.Logf("%d records, %d events, %d rejected, %d manifests, %d notices", len(recs), events, rejected, len(seen), len(notices))
}

// runSluice runs a sluice command to its end and returns its output.
func runSluice(t *testing.T, env []string, args ...string) string {
	t.Helper()
	p := startSluiceEnv(t, env, args...)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("sluice %s: %v\n%s", args[0], err, p.stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("sluice %s did not finish", args[0])
	}
	return p.stderr.String()
}

// handoffRecords are n records per hour for partitions 0-2 over three
// hours from base; partition 3 gets none. Duplicates (2%) land on their
// original's partition; 3% are bad; scroll events are filtered.
func handoffRecords(base time.Time, n int) []handoffRecord {
	g := synth.New(synth.Options{Seed: 77, DupRate: 0.02, BadRate: 0.03, Start: base})
	var recs []handoffRecord
	seen := map[string]bool{}
	step := time.Hour / time.Duration(n)
	for i := range 3 * n {
		at := base.Add(time.Duration(i) * step)
		for p := range 3 {
			v, kind := g.Append(nil)
			r := handoffRecord{partition: int32(p), time: at, value: v}
			if kind == synth.Bad {
				r.kind = "rejected"
			} else {
				id := string(synth.EventID(v))
				// A duplicate goes where its original went.
				h := fnv.New32a()
				h.Write([]byte(id))
				r.partition = int32(h.Sum32() % 3)
				var e struct{ Event string }
				json.Unmarshal(v, &e)
				switch {
				case seen[id]:
					r.kind = "duplicate"
				case e.Event == "scroll":
					r.kind = "filtered"
				default:
					r.kind = "event"
				}
				seen[id] = true
			}
			recs = append(recs, r)
		}
	}
	return recs
}

// produceAt writes recs with kafka-go, each to its partition with its
// Kafka timestamp.
func produceAt(t *testing.T, addr, topic string, recs []handoffRecord) {
	t.Helper()
	w := &kafkago.Writer{
		Addr: kafkago.TCP(addr), Topic: topic, RequiredAcks: kafkago.RequireAll,
		BatchSize: 100, BatchTimeout: 5 * time.Millisecond,
		Balancer: kafkago.BalancerFunc(func(m kafkago.Message, _ ...int) int {
			p, _ := strconv.Atoi(string(m.Headers[0].Value))
			return p
		}),
	}
	defer w.Close()
	msgs := make([]kafkago.Message, 0, len(recs))
	for _, r := range recs {
		msgs = append(msgs, kafkago.Message{Value: r.value, Time: r.time,
			Headers: []kafkago.Header{{Key: "p", Value: []byte(strconv.Itoa(int(r.partition)))}}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("kafka-go produce: %v", err)
	}
}

// expectedCounts is what each (hour, partition) reconciles to.
func expectedCounts(recs []handoffRecord) map[[2]int64]handoff.Counts {
	out := map[[2]int64]handoff.Counts{}
	for _, r := range recs {
		k := [2]int64{r.time.Unix() / 3600, int64(r.partition)}
		c := out[k]
		c.Records++
		switch r.kind {
		case "event":
			c.Events++
		case "rejected":
			c.Rejected++
		case "duplicate":
			c.Duplicates++
		case "filtered":
			c.Filtered++
		}
		out[k] = c
	}
	return out
}

// checkManifestFiles: the hour directory holds exactly m's files, each
// with its rows and bytes.
func checkManifestFiles(t *testing.T, root, key string, m handoff.Manifest) {
	t.Helper()
	dir := filepath.Dir(filepath.Join(root, key))
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var onDisk, listed []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".parquet") {
			onDisk = append(onDisk, filepath.ToSlash(filepath.Join(filepath.Dir(key), e.Name())))
		}
	}
	var rows int64
	for _, f := range m.Files {
		listed = append(listed, f.Key)
		st, err := os.Stat(filepath.Join(root, f.Key))
		if err != nil || st.Size() != f.Bytes {
			t.Errorf("%s lists %s (%d bytes): %v", key, f.Key, f.Bytes, err)
			continue
		}
		pf, err := arrowread.Read(context.Background(), filepath.Join(root, f.Key), 0)
		if err != nil {
			t.Errorf("%s lists %s: %v", key, f.Key, err)
		} else if pf.NumRows != f.Rows {
			t.Errorf("%s lists %s with %d rows, it has %d", key, f.Key, f.Rows, pf.NumRows)
		}
		rows += f.Rows
	}
	slices.Sort(onDisk)
	if !slices.Equal(onDisk, listed) {
		t.Errorf("%s lists\n  %v\nthe hour holds\n  %v", key, listed, onDisk)
	}
	if rows != m.Rows {
		t.Errorf("%s: rows %d, files sum to %d", key, m.Rows, rows)
	}
}

func hourOfKey(t *testing.T, key string) int64 {
	t.Helper()
	var d string
	var h int
	parts := strings.Split(key, "/")
	if _, err := fmt.Sscanf(parts[1]+" "+parts[2], "date=%s hour=%d", &d, &h); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	day, err := time.Parse("2006-01-02", d)
	if err != nil {
		t.Fatal(err)
	}
	return day.Unix()/3600 + int64(h)
}

// readTopic reads every message of a topic's partition 0 with kafka-go.
func readTopic(t *testing.T, addr, topic string) []kafkago.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafkago.DialLeader(ctx, "tcp", addr, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	end, err := conn.ReadLastOffset()
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var out []kafkago.Message
	for int64(len(out)) < end {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s: %v after %d of %d", topic, err, len(out), end)
		}
		out = append(out, m)
	}
	return out
}
