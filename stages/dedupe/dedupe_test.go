package dedupe

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluicedata/sluice/pipeline"
)

func batch(ids []string, times []int64) *pipeline.Batch {
	b := &pipeline.Batch{}
	for i, id := range ids {
		b.Events = append(b.Events, pipeline.Event{Offset: int64(i), EventID: id, KafkaTime: times[i], SessionID: "s"})
	}
	return b
}

func states(b *pipeline.Batch) string {
	out := ""
	for _, e := range b.Events {
		if e.State == pipeline.Dropped {
			out += "D"
		} else {
			out += "k"
		}
	}
	return out
}

func TestFirstOccurrenceWinsWithinWindow(t *testing.T) {
	min := int64(60_000)
	for _, tt := range []struct {
		name  string
		ids   []string
		times []int64
		want  string
	}{
		{"repeat in window", []string{"a", "b", "a", "a"}, []int64{0, 1, 2, 3}, "kkDD"},
		{"repeat after window", []string{"a", "a"}, []int64{0, 10*min + 1}, "kk"},
		{"repeat at window edge", []string{"a", "a"}, []int64{0, 10 * min}, "kD"},
		{"window restarts after expiry", []string{"a", "a", "a"}, []int64{0, 11 * min, 12 * min}, "kkD"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := New(Options{}, nil)
			b := batch(tt.ids, tt.times)
			s.Process(context.Background(), b)
			if got := states(b); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCompositeKeyAndRejectedIgnored(t *testing.T) {
	s, err := New(Options{Key: []string{"event_id", "session_id"}, Window: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := batch([]string{"a", "a", "a"}, []int64{0, 1, 2})
	b.Events[1].SessionID = "other"
	b.Events[2].State = pipeline.Rejected
	s.Process(context.Background(), b)
	if b.Events[1].State != pipeline.Keep || b.Events[2].State != pipeline.Rejected {
		t.Errorf("states %v %v", b.Events[1].State, b.Events[2].State)
	}
	if _, err := New(Options{Key: []string{"user_id"}}, nil); err == nil {
		t.Error("unknown key accepted")
	}
}

// TestWarmRebuildsDecisions: a stage warmed with the records before the
// start drops what a stage that saw everything would drop.
func TestWarmRebuildsDecisions(t *testing.T) {
	ids := []string{"a", "b", "c", "a", "d", "b", "e", "c"}
	times := []int64{0, 1, 2, 3, 4, 5, 6, 7}
	full, _ := New(Options{}, nil)
	all := batch(ids, times)
	full.Process(context.Background(), all)

	for split := range ids {
		st := &Stats{}
		s, _ := New(Options{}, st)
		before := batch(ids[:split], times[:split])
		s.Warm(before)
		after := batch(ids[split:], times[split:])
		s.Process(context.Background(), after)
		if got, want := states(after), states(all)[split:]; got != want {
			t.Errorf("split %d: %s, want %s", split, got, want)
		}
		cold, _ := New(Options{}, nil)
		coldB := batch(ids[split:], times[split:])
		cold.Process(context.Background(), coldB)
		if split == 4 && states(coldB) == states(all)[split:] {
			t.Error("the test cannot tell a warm window from a cold one")
		}
	}
}

func TestMemoryBound(t *testing.T) {
	st := &Stats{}
	s, _ := New(Options{MaxEntries: 1000, Window: time.Hour}, st)
	b := &pipeline.Batch{}
	for i := range 5000 {
		b.Events = append(b.Events, pipeline.Event{EventID: fmt.Sprint(i), KafkaTime: int64(i)})
	}
	s.Process(context.Background(), b)
	if s.Len() != 1000 || st.Entries.Load() != 1000 || st.EvictedEarly.Load() != 4000 {
		t.Errorf("len %d entries %d evicted %d", s.Len(), st.Entries.Load(), st.EvictedEarly.Load())
	}
	if len(s.order)-s.head > 2000 {
		t.Errorf("eviction ring not compacted: %d live of %d", len(s.order)-s.head, len(s.order))
	}
	s.Close()
	if st.Entries.Load() != 0 {
		t.Errorf("entries after close %d", st.Entries.Load())
	}
}

func BenchmarkDedupe(b *testing.B) {
	s, _ := New(Options{}, nil)
	batch := &pipeline.Batch{Events: make([]pipeline.Event, 1000)}
	ids := make([]string, 100000)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-4c1f-4b5e-9d7a-1f2e3d4c5b6a", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch.Events) {
		for j := range batch.Events {
			batch.Events[j] = pipeline.Event{EventID: ids[(i+j)%len(ids)], KafkaTime: int64(i + j)}
		}
		s.Process(context.Background(), batch)
	}
}
