package handoff_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/pipeline/delivery"
	"github.com/sluicedata/sluice/pipeline/handoff"
	"github.com/sluicedata/sluice/sinks/objstore"
)

const (
	group = "g"
	h0    = int64(491760) // 2026-02-06T00:00Z in unix hours
	hMs   = int64(3_600_000)
)

func store(t *testing.T) delivery.StateStore {
	t.Helper()
	d, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return objstore.StateStore{Store: d}
}

// ledger is a partition's part of hour h: n records, of which 1 rejected,
// 1 duplicate, 1 filtered, in one events and one rejected file.
func ledger(topic string, p int32, h, first, n int64) delivery.HourLedger {
	name := func(out string) string {
		return fmt.Sprintf("%s/date=x/hour=%d/%s+%d+%020d+%020d.parquet", out, h, topic, p, first, first+n-1)
	}
	return delivery.HourLedger{
		HourCount: pipeline.HourCount{Hour: h, Records: n, Events: n - 3, Rejected: 1, Duplicates: 1, Filtered: 1},
		Ranges:    []delivery.OffsetRange{{First: first, Last: first + n - 1}},
		Files: []delivery.LedgerFile{
			{Key: name("events"), Output: "events", Rows: n - 3, Bytes: 1000, First: first, Last: first + n - 1, MinEventTime: h * hMs, MaxEventTime: h*hMs + 5},
			{Key: name("rejected"), Output: "rejected", Rows: 1, Bytes: 100, First: first, Last: first + n - 1},
		},
	}
}

func save(t *testing.T, s delivery.StateStore, st delivery.PartitionState) {
	t.Helper()
	st.Group = group
	data, _ := json.Marshal(st)
	key := delivery.StateKey(group, st.Topic, st.Partition)
	_, v, _ := s.Load(context.Background(), key)
	if _, err := s.Save(context.Background(), key, data, v); err != nil {
		t.Fatal(err)
	}
}

func tracker(t *testing.T, s delivery.StateStore, parts map[string][]int32, notices *[]string, mu *sync.Mutex) *handoff.Tracker {
	t.Helper()
	tr, err := handoff.New(handoff.Config{
		Store: s, Group: group,
		Partitions: func(context.Context) (map[string][]int32, error) { return parts, nil },
		Outputs:    []handoff.Output{{Name: "events", Fingerprint: "fe"}, {Name: "rejected", Fingerprint: "fr"}},
		Notify: func(_ context.Context, m handoff.Manifest, key string) error {
			mu.Lock()
			defer mu.Unlock()
			*notices = append(*notices, key)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestManifestsOnceFromTwoReplicas: three partitions over two hours, one
// of them idle (sealed, no records): two trackers racing write each hour's
// manifests exactly once, with the same bytes, listing every file and
// reconciling every partition; the hour not sealed by all gets none.
func TestManifestsOnceFromTwoReplicas(t *testing.T) {
	s := store(t)
	parts := map[string][]int32{"events": {0, 1, 2}}
	save(t, s, delivery.PartitionState{Topic: "events", Partition: 0, Next: 200, SealedBefore: (h0 + 2) * hMs,
		Hours: []delivery.HourLedger{ledger("events", 0, h0, 0, 100), ledger("events", 0, h0+1, 100, 100)}})
	save(t, s, delivery.PartitionState{Topic: "events", Partition: 1, Next: 50, SealedBefore: (h0 + 1) * hMs,
		Hours: []delivery.HourLedger{ledger("events", 1, h0, 0, 50)}})
	save(t, s, delivery.PartitionState{Topic: "events", Partition: 2, Next: 0, SealedBefore: (h0 + 5) * hMs}) // idle

	var mu sync.Mutex
	var notices []string
	a, b := tracker(t, s, parts, &notices, &mu), tracker(t, s, parts, &notices, &mu)
	var wg sync.WaitGroup
	for _, tr := range []*handoff.Tracker{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := tr.Round(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if w := a.Written.Load() + b.Written.Load(); w != 2 {
		t.Fatalf("%d manifests created, want 2 (events and rejected of hour 0)", w)
	}
	data, _, err := s.Load(context.Background(), handoff.ManifestKey("events", h0))
	if err != nil {
		t.Fatal(err)
	}
	var m handoff.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m.Rows != 97+47 || len(m.Files) != 2 || m.SchemaFingerprint != "fe" || m.Date != "2026-02-06" || m.Hour != 0 {
		t.Errorf("manifest %+v", m)
	}
	if len(m.Partitions) != 3 || m.Partitions[2].Records != 0 || !m.Totals.Balanced() || m.Totals.Records != 150 {
		t.Errorf("reconciliation %+v, totals %+v", m.Partitions, m.Totals)
	}
	for _, p := range m.Partitions {
		if !p.Balanced() {
			t.Errorf("partition %d does not balance: %+v", p.Partition, p.Counts)
		}
	}
	if _, _, err := s.Load(context.Background(), handoff.ManifestKey("events", h0+1)); err == nil {
		t.Error("hour 1 has a manifest while partition 1 has not sealed it")
	}
	if len(notices) < 2 {
		t.Errorf("notices %v, want each manifest announced at least once", notices)
	}
	if a.HandedOff() != (h0+1)*hMs && b.HandedOff() != (h0+1)*hMs {
		t.Errorf("marker at %d/%d, want the end of hour 0", a.HandedOff(), b.HandedOff())
	}

	// Partition 1 seals hour 1; its owner prunes hour 0 (handed off). A
	// third round writes hour 1 only.
	save(t, s, delivery.PartitionState{Topic: "events", Partition: 1, Next: 50, SealedBefore: (h0 + 2) * hMs})
	save(t, s, delivery.PartitionState{Topic: "events", Partition: 0, Next: 200, SealedBefore: (h0 + 2) * hMs,
		Hours: []delivery.HourLedger{ledger("events", 0, h0+1, 100, 100)}})
	n, err := a.Round(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("round: %d manifests, %v; want 2", n, err)
	}
	again, _, _ := s.Load(context.Background(), handoff.ManifestKey("events", h0))
	if string(again) != string(data) {
		t.Error("hour 0's manifest changed")
	}
}

// TestMissingStateHoldsBack: a consumed partition without a state (never
// owned, never sealed) holds every hour back, and status says so.
func TestMissingStateHoldsBack(t *testing.T) {
	s := store(t)
	parts := map[string][]int32{"events": {0, 1}}
	save(t, s, delivery.PartitionState{Topic: "events", Partition: 0, Next: 100, SealedBefore: (h0 + 3) * hMs,
		Hours: []delivery.HourLedger{ledger("events", 0, h0, 0, 100)}})
	var mu sync.Mutex
	var notices []string
	tr := tracker(t, s, parts, &notices, &mu)
	if n, err := tr.Round(context.Background()); err != nil || n != 0 {
		t.Fatalf("round: %d, %v", n, err)
	}
	st, _, err := handoff.Read(context.Background(), s, group, parts)
	if err != nil {
		t.Fatal(err)
	}
	hs := st.Hours(h0, h0)
	if len(hs) != 1 || hs[0].Complete || len(hs[0].Behind) != 1 || !hs[0].Behind[0].NoState || hs[0].Behind[0].Partition != 1 {
		t.Errorf("status %+v", hs)
	}
	if !strings.HasSuffix(handoff.ManifestKey("events", h0), "date=2026-02-06/hour=00/_manifest.json") {
		t.Error(handoff.ManifestKey("events", h0))
	}
}
