package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/snowplow"
	"github.com/sluicedata/sluice/internal/testkit"
	"github.com/sluicedata/sluice/internal/testkit/readback"
)

const snowplowKey = "snowplow-e2e-pseudonym-key-0123"

// trackerRun is one run of testdata/tracker.mjs: what it tracked and which
// events the collector answered 200 for.
type trackerRun struct {
	mu       sync.Mutex
	tracked  map[string]map[string]any // eid → the tracker's payload
	answered map[string]bool
	failed   int
	done     chan struct{}
	stderr   bytes.Buffer
}

// startTrackers runs the real @snowplow/node-tracker against the collector
// on port.
func startTrackers(t *testing.T, port string, trackers, events, paceMs int) *trackerRun {
	t.Helper()
	mods := readback.NodeModules()
	if mods == "" {
		t.Fatal("node and the npm packages are needed (make tools)")
	}
	if _, err := os.Stat(filepath.Join(mods, "@snowplow", "node-tracker", "package.json")); err != nil {
		t.Fatal("@snowplow/node-tracker is not installed (make tools)")
	}
	cmd := exec.Command("node", filepath.Join("testdata", "tracker.mjs"), mods, port, fmt.Sprint(trackers), fmt.Sprint(events), fmt.Sprint(paceMs))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	tr := &trackerRun{tracked: map[string]map[string]any{}, answered: map[string]bool{}, done: make(chan struct{})}
	cmd.Stderr = &tr.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	go func() {
		defer close(tr.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct {
				Tracked map[string]any `json:"tracked"`
				OK      []string       `json:"ok"`
				Failed  int            `json:"failed"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				continue
			}
			tr.mu.Lock()
			if line.Tracked != nil {
				tr.tracked[line.Tracked["eid"].(string)] = line.Tracked
			}
			for _, id := range line.OK {
				tr.answered[id] = true
			}
			tr.failed += line.Failed
			tr.mu.Unlock()
		}
		cmd.Wait()
	}()
	return tr
}

func (tr *trackerRun) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-tr.done:
	case <-time.After(d):
		t.Fatalf("trackers did not finish in %s:\n%s", d, tr.stderr.String())
	}
}

func collectConfig(t *testing.T, brokers []string, listen string) string {
	t.Helper()
	cfg := fmt.Sprintf(`kafka:
  brokers: [%s]
collect:
  listen: %s
  topic: snowplow-raw
observability:
  listen: 127.0.0.1:0
  log_level: debug
shutdown_timeout: 10s
`, strings.Join(brokers, ", "), listen)
	p := filepath.Join(t.TempDir(), "collect.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func pseudonym(id string) string {
	m := hmac.New(sha256.New, []byte(snowplowKey))
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil))
}

// selfDescribing reads a tracker's ue_px/cx (base64) or ue_pr/co (JSON).
func selfDescribing(t *testing.T, p map[string]any, plain, encoded string) map[string]any {
	t.Helper()
	var text []byte
	if s, ok := p[plain].(string); ok {
		text = []byte(s)
	} else if s, ok := p[encoded].(string); ok {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			t.Fatalf("%s: %v", encoded, err)
		}
		text = b
	} else {
		return nil
	}
	var v map[string]any
	if err := json.Unmarshal(text, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func jsonEqual(t *testing.T, got any, want any) bool {
	t.Helper()
	var g any
	s, ok := got.(string)
	if !ok {
		return got == nil && want == nil
	}
	if err := json.Unmarshal([]byte(s), &g); err != nil {
		return false
	}
	a, _ := json.Marshal(g)
	b, _ := json.Marshal(want)
	return bytes.Equal(a, b)
}

// TestSnowplowTrackersEndToEnd: four real Node trackers send page views,
// structured events and self-describing events with contexts to `sluice
// collect`, which is killed with SIGKILL while they send and restarted;
// `sluice run` with decode format snowplow and every other stage writes
// Parquet. Every event a tracker got a 200 for is in the output exactly
// once, each column as the mapping says, the ids only as pseudonyms.
func TestSnowplowTrackersEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	kc := testkit.Kafka(t, "snowplow-raw", 3)
	brokers := kc.ListenAddrs()
	listen := freeAddr(t)
	port := listen[strings.LastIndex(listen, ":")+1:]
	ccfg := collectConfig(t, brokers, listen)
	col := startSluice(t, "collect", "--config", ccfg)
	testkit.WaitFor(t, 30*time.Second, "collector listening", func() bool { return strings.Contains(col.stderr.String(), "collecting") })

	geoPath := testkit.GeoDB(t, testkit.GeoNetworks, 1)
	out := t.TempDir()
	stages := fmt.Sprintf(`  - {type: decode, format: snowplow}
  - {type: geo, database: %s}
  - {type: useragent}
  - {type: pseudonymize, key_env: SP_PSEUDO_KEY, key_id: k1}
  - {type: dedupe, key: event_id, window: 1h}
  - {type: filter, drop_events: [never_sent]}`, geoPath)
	run := startSluiceEnv(t, []string{"SP_PSEUDO_KEY=" + snowplowKey}, "run", "--config", writeConfig(t, brokers, "snowplow-raw", "snowplow", out, stages))

	const trackers, events = 4, 120
	tr := startTrackers(t, port, trackers, events, 15)
	// Kill the collector while the trackers send, then restart it.
	testkit.WaitFor(t, 30*time.Second, "events answered before the kill", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.answered) > 100
	})
	col.cmd.Process.Signal(syscall.SIGKILL)
	<-col.done
	time.Sleep(500 * time.Millisecond)
	col2 := startSluice(t, "collect", "--config", ccfg)
	tr.wait(t, 2*time.Minute)

	tr.mu.Lock()
	answered, tracked, failed := len(tr.answered), len(tr.tracked), tr.failed
	tr.mu.Unlock()
	if tracked != trackers*events {
		t.Fatalf("tracked %d events, want %d", tracked, trackers*events)
	}
	if failed == 0 {
		t.Error("no request failed: the kill did not land while the trackers were sending")
	}
	testkit.WaitFor(t, 60*time.Second, "every answered event in the output", func() bool {
		return len(testkit.ReadOutput(t, out).Events) >= answered
	})
	time.Sleep(2 * time.Second) // a late duplicate would show now
	col2.stop(t)
	run.stop(t)
	res := testkit.ReadAll(t, out)
	if len(res.Rejected) != 0 {
		t.Errorf("%d rejected rows: %v", len(res.Rejected), res.Rejected[0])
	}

	seen := map[string]int{}
	for _, r := range res.Events {
		id := r["event_id"].(string)
		seen[id]++
		p, ok := tr.tracked[id]
		if !ok {
			t.Errorf("event %s was never tracked", id)
			continue
		}
		checkSnowplowRow(t, r, p)
	}
	for id := range tr.answered {
		if seen[id] != 1 {
			t.Errorf("answered event %s is in %d rows", id, seen[id])
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s in %d rows", id, n)
		}
	}
	for _, r := range res.Events {
		for col, v := range r {
			s, ok := v.(string)
			if ok && (strings.HasPrefix(s, "user-") || strings.HasPrefix(s, "duid-")) && col != "properties" {
				t.Errorf("raw id %q in column %s", s, col)
			}
		}
	}
	t.Logf("%d tracked, %d answered 200, %d failed requests' events, %d rows", tracked, answered, failed, len(res.Events))
}

// checkSnowplowRow compares one output row with the tracker's payload.
func checkSnowplowRow(t *testing.T, r map[string]any, p map[string]any) {
	t.Helper()
	str := func(k string) any {
		if v, ok := p[k].(string); ok {
			return v
		}
		return nil
	}
	id := p["eid"].(string)
	wantName := map[string]string{"pv": "page_view", "se": "struct", "ue": "checkout"}[p["e"].(string)]
	eq := func(col string, want any) {
		if r[col] != want {
			t.Errorf("%s: %s = %v, want %v", id, col, r[col], want)
		}
	}
	eq("event_name", wantName)
	eq("app_id", str("aid"))
	eq("platform", "srv")
	eq("session_id", str("sid"))
	eq("page_url", str("url"))
	eq("page_referrer", str("refr"))
	eq("user_pseudo_id", pseudonym(p["uid"].(string)))
	eq("domain_user_pseudo_id", pseudonym(p["duid"].(string)))
	eq("network_user_pseudo_id", nil) // cookie off, no tnuid
	eq("ip_anonymized", "127.0.0.0")
	eq("src_index", int32(0)) // the collector writes one event per record
	dtm := p["dtm"].(string)
	var ms int64
	fmt.Sscan(dtm, &ms)
	if et := r["event_time"]; et == nil {
		t.Errorf("%s: no event_time", id)
	}
	switch p["e"] {
	case "pv":
		eq("event_schema", nil)
		if !jsonEqual(t, r["properties"], map[string]any{"title": p["page"]}) {
			t.Errorf("%s: properties %v", id, r["properties"])
		}
	case "se":
		var va float64
		fmt.Sscan(p["se_va"].(string), &va)
		want := map[string]any{"category": p["se_ca"], "action": p["se_ac"], "label": p["se_la"], "property": p["se_pr"], "value": va}
		if !jsonEqual(t, r["properties"], want) {
			t.Errorf("%s: properties %v, want %v", id, r["properties"], want)
		}
	case "ue":
		ue := selfDescribing(t, p, "ue_pr", "ue_px")["data"].(map[string]any)
		eq("event_schema", ue["schema"])
		if !jsonEqual(t, r["properties"], ue["data"]) {
			t.Errorf("%s: properties %v, want %v", id, r["properties"], ue["data"])
		}
	}
	if cx := selfDescribing(t, p, "co", "cx"); cx != nil {
		if !jsonEqual(t, r["contexts"], cx["data"]) {
			t.Errorf("%s: contexts %v, want %v", id, r["contexts"], cx["data"])
		}
	} else {
		eq("contexts", nil)
	}
	var extra map[string]string
	if s, ok := r["extra"].(string); !ok || json.Unmarshal([]byte(s), &extra) != nil || extra["tv"] != p["tv"] || extra["dtm"] != dtm {
		t.Errorf("%s: extra %v", id, r["extra"])
	}
}

// rawExpect is what one (partition, offset, index) of the raw stream must
// become.
type rawExpect struct {
	kind string // event, rejected, duplicate
	eid  string
}

type rawKey struct {
	partition int32
	offset    int64
	index     int32
}

// TestSnowplowRawStreamExactlyOnce: the raw stream as Snowplow's own
// collector writes it — tp2 POSTs of up to eight events per record, GET
// pixels, bad events inside good payloads, records that are no payload,
// re-sent events — through sluice killed at three steps of a flush and
// restarted: every event is in exactly one row (events, or rejected with
// its src_index), re-sent events are dropped once, nothing else appears.
func TestSnowplowRawStreamExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const topic = "raw"
	kc := testkit.Kafka(t, topic, 2)
	brokers := kc.ListenAddrs()

	var recs []handoffRecord
	want := map[rawKey]rawExpect{}
	next := [2]int64{}
	rng := uint64(7)
	rnd := func(n int) int {
		rng = rng*6364136223846793005 + 1442695040888963407
		return int((rng >> 33) % uint64(n))
	}
	var sent []string // event ids already sent, for re-sends
	part := map[string]int32{}
	ev := func(i int, p int32) map[string]string {
		if len(sent) > 10 && rnd(30) == 0 { // a tracker's retry: same eid, same partition
			id := sent[rnd(len(sent))]
			if part[id] == p {
				return map[string]string{"e": "pv", "eid": id, "url": "https://r/"}
			}
		}
		id := fmt.Sprintf("ev-%d-%d", p, i)
		sent, part[id] = append(sent, id), p
		switch rnd(10) {
		case 0:
			return map[string]string{"e": "pv", "url": "https://no-eid/"}
		case 1:
			return map[string]string{"e": "se", "eid": id, "cx": "!!!"}
		default:
			return map[string]string{"e": "pv", "eid": id, "url": "https://ok/" + id, "uid": "u" + id}
		}
	}
	seenID := map[string]bool{}
	expectEvent := func(k rawKey, e map[string]string) {
		switch {
		case e["eid"] == "" || e["cx"] == "!!!":
			want[k] = rawExpect{kind: "rejected"}
		case seenID[e["eid"]]:
			want[k] = rawExpect{kind: "duplicate", eid: e["eid"]}
		default:
			seenID[e["eid"]] = true
			want[k] = rawExpect{kind: "event", eid: e["eid"]}
		}
	}
	for i := range 800 {
		p := int32(rnd(2))
		k := rawKey{partition: p, offset: next[p]}
		next[p]++
		pl := snowplow.CollectorPayload{Schema: snowplow.Schema, IPAddress: "81.2.69.142", Timestamp: time.Now().UnixMilli(), Encoding: "UTF-8", Collector: "scala-ssc"}
		var value []byte
		switch r := rnd(20); {
		case r == 0:
			value = []byte("not thrift at all")
			want[k] = rawExpect{kind: "rejected"}
		case r == 1:
			pl.Schema = "iglu:com.acme/other/thrift/1-0-0"
			pl.Querystring = "e=pv&eid=x"
			value = pl.Marshal(nil)
			want[k] = rawExpect{kind: "rejected"}
		case r < 7:
			e := ev(i, p)
			q := url.Values{}
			for k, v := range e {
				q.Set(k, v)
			}
			pl.Querystring = q.Encode()
			value = pl.Marshal(nil)
			expectEvent(k, e)
		default:
			n := 1 + rnd(8)
			var data []map[string]string
			for j := range n {
				e := ev(i*10+j, p)
				data = append(data, e)
				expectEvent(rawKey{partition: p, offset: k.offset, index: int32(j)}, e)
			}
			b, _ := json.Marshal(map[string]any{"schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4", "data": data})
			pl.Body = string(b)
			value = pl.Marshal(nil)
		}
		recs = append(recs, handoffRecord{partition: p, time: time.Now(), value: value})
	}
	produceAt(t, brokers[0], topic, recs)

	out := t.TempDir()
	cfg := writeConfig(t, brokers, topic, "raw", out, "  - {type: decode, format: snowplow}\n  - {type: dedupe, key: event_id, window: 1h}")
	cfg = withRoll(t, cfg, "{max_age: 200ms, max_rows: 60}")
	for _, fp := range []string{"upload=3", "state-pending=4", "state-done=3"} {
		p := startSluiceEnv(t, []string{"SLUICE_FAILPOINTS=" + fp}, "run", "--config", cfg)
		select {
		case <-p.done:
		case <-time.After(60 * time.Second):
			t.Fatalf("failpoint %s never hit", fp)
		}
		if !strings.Contains(p.stderr.String(), "failpoint") {
			t.Fatalf("exited without hitting %s:\n%s", fp, p.stderr.String())
		}
	}
	p := startSluice(t, "run", "--config", cfg)
	total := len(want)
	dups := 0
	for _, w := range want {
		if w.kind == "duplicate" {
			dups++
		}
	}
	testkit.WaitFor(t, 60*time.Second, "every event", func() bool { return testkit.ReadOutput(t, out).Total() >= total-dups })
	time.Sleep(time.Second)
	p.stop(t)
	res := testkit.ReadAll(t, out)

	got := map[rawKey]int{}
	for _, r := range res.Events {
		k := rawKey{r["src_partition"].(int32), r["src_offset"].(int64), r["src_index"].(int32)}
		got[k]++
		if w := want[k]; w.kind != "event" || w.eid != r["event_id"] {
			t.Errorf("%v: event row %s, want %+v", k, r["event_id"], w)
		}
	}
	for _, r := range res.Rejected {
		k := rawKey{r["src_partition"].(int32), r["src_offset"].(int64), r["src_index"].(int32)}
		got[k]++
		if w := want[k]; w.kind != "rejected" {
			t.Errorf("%v: rejected (%s), want %+v", k, r["error"], w)
		}
	}
	for k, w := range want {
		n := got[k]
		if (w.kind == "duplicate" && n != 0) || (w.kind != "duplicate" && n != 1) {
			t.Errorf("%v (%s %s): %d rows", k, w.kind, w.eid, n)
		}
	}
	if dups == 0 {
		t.Error("no re-sent events: the dedupe part proves nothing")
	}
	t.Logf("%d records, %d events in them, %d re-sent; %d event rows, %d rejected rows", len(recs), total, dups, len(res.Events), len(res.Rejected))
}
