package dedupe

import (
	"context"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/zeebo/xxh3"

	"github.com/sluicedata/sluice/internal/hugemem"
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
	if s.Bytes() > 1024*32 {
		t.Errorf("window of 1,000 entries holds %d bytes", s.Bytes())
	}
	if st.Bytes.Load() != s.Bytes() || s.Bytes() == 0 {
		t.Errorf("stats bytes %d, window %d", st.Bytes.Load(), s.Bytes())
	}
	s.Close()
	if st.Entries.Load() != 0 || st.Bytes.Load() != 0 {
		t.Errorf("entries after close %d, bytes %d", st.Entries.Load(), st.Bytes.Load())
	}
}

// model is the window's specification: a map and an arrival list.
type model struct {
	seen  map[xxh3.Uint128]int64
	order []entry
	max   int
	win   int64
}

func (m *model) observe(h xxh3.Uint128, ms int64) bool {
	for len(m.order) > 0 && m.order[0].ms < ms-m.win {
		m.pop()
	}
	first, ok := m.seen[h]
	if ok && ms-first <= m.win {
		return true
	}
	if !ok {
		for len(m.seen) >= m.max && len(m.order) > 0 {
			m.pop()
		}
	}
	m.seen[h] = ms
	m.order = append(m.order, entry{h, ms})
	return false
}

func (m *model) pop() {
	e := m.order[0]
	m.order = m.order[1:]
	if ms, ok := m.seen[e.h]; ok && ms == e.ms {
		delete(m.seen, e.h)
	}
}

// TestWindowMatchesModel drives the compact window and the model with the
// same random keys (few distinct, so repeats and collisions of home slots
// are common), out-of-order times and a small MaxEntries, through growth
// and shrinking, and wants the same decision for every event.
func TestWindowMatchesModel(t *testing.T) {
	for seed := range int64(20) {
		rng := rand.New(rand.NewSource(seed))
		maxEntries := 1 + rng.Intn(5000)
		window := time.Duration(1+rng.Intn(2000)) * time.Millisecond
		s, _ := New(Options{MaxEntries: maxEntries, Window: window}, nil)
		m := &model{seen: map[xxh3.Uint128]int64{}, max: maxEntries, win: window.Milliseconds()}
		keys := 1 + rng.Intn(20000)
		ms := int64(0)
		for i := range 60000 {
			ms += int64(rng.Intn(3))
			at := ms
			if rng.Intn(50) == 0 {
				at -= int64(rng.Intn(3000)) // out of order
			}
			if i > 30000 && rng.Intn(4) != 0 {
				ms += 5 // a quieter stretch: the window shrinks
				if rng.Intn(1000) == 0 {
					ms += 10000
				}
			}
			h := xxh3.Hash128([]byte(fmt.Sprint(rng.Intn(keys))))
			got, want := s.observe(h, at), m.observe(h, at)
			if got != want {
				t.Fatalf("seed %d event %d: window says duplicate=%v, model %v", seed, i, got, want)
			}
			if s.Len() != len(m.seen) {
				t.Fatalf("seed %d event %d: window holds %d, model %d", seed, i, s.Len(), len(m.seen))
			}
		}
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

// TestWindowShrinks: after a burst leaves the window, its memory goes too.
func TestWindowShrinks(t *testing.T) {
	s, _ := New(Options{Window: time.Second}, nil)
	for i := range 100_000 {
		s.observe(xxh3.HashString128(fmt.Sprint(i)), int64(i/100))
	}
	burst := s.Bytes()
	for i := range 100 {
		s.observe(xxh3.HashString128(fmt.Sprint("quiet", i)), 10_000+int64(i))
	}
	if s.Len() != 100 || s.Bytes() > burst/16 {
		t.Errorf("after the burst: %d entries in %d bytes (burst held %d)", s.Len(), s.Bytes(), burst)
	}
}

// TestTagCollisions: keys with one home slot, with and without the same
// tag, stay distinct through inserts, lookups, evictions and growth.
func TestTagCollisions(t *testing.T) {
	w := newWindow()
	var keys []xxh3.Uint128
	for i := range uint64(3000) {
		// One home for all (same Lo); the tag is the top bits of Hi:
		// every third key shares the tag of key 0, the rest differ in it.
		hi := i // low bits differ, top bits equal: same tag
		if i%3 != 0 {
			hi |= i << 50
		}
		keys = append(keys, xxh3.Uint128{Hi: hi, Lo: 7})
	}
	for i, k := range keys {
		if !w.put(k, int64(i)) {
			t.Fatalf("key %d reported seen before", i)
		}
	}
	for i, k := range keys {
		if ms, ok := w.get(k); !ok || ms != int64(i) {
			t.Fatalf("key %d: %d %v", i, ms, ok)
		}
	}
	for i := range 1500 {
		if !w.pop() {
			t.Fatalf("pop %d: not live", i)
		}
	}
	for i, k := range keys {
		if _, ok := w.get(k); ok != (i >= 1500) {
			t.Fatalf("key %d after evicting the first 1500: found %v", i, ok)
		}
	}
}

// windowUsage is the regions and blocks of the classes windows take.
func windowUsage() hugemem.Stats { return hugemem.Usage(minClassBytes, hugemem.RegionSize/2) }

// bigBytes is what hugemem holds beyond the window classes' regions and
// the spare ones (the Bigs mapped, in this package's tests).
func bigBytes() int64 {
	kept, _ := hugemem.Spare()
	return hugemem.Backed() - int64(kept+windowUsage().Regions)*hugemem.RegionSize
}

// lentBlocks is the class blocks lent to windows.
func lentBlocks() int { return windowUsage().Lent }

// TestBigWindowMatchesModel: a window of 64 KiB of slots or more lives
// outside the Go heap (a hugemem class's block, then from a huge page on
// a hugemem.Big); it decides as the model does through growth into them
// and shrinking out of them, it holds one block at a time (resize gives
// the one before back), and every byte it mapped and every block is
// given back by the shrink and by Close.
func TestBigWindowMatchesModel(t *testing.T) {
	// Earlier tests' stages may hold blocks still.
	base, baseLent := bigBytes(), lentBlocks()
	s, _ := New(Options{MaxEntries: 300_000, Window: 100 * time.Second}, nil)
	m := &model{seen: map[xxh3.Uint128]int64{}, max: 300_000, win: 100_000}
	rng := rand.New(rand.NewSource(7))
	var peak int64
	inClass := 0
	observe := func(i int, key string, at int64) {
		h := xxh3.HashString128(key)
		if got, want := s.observe(h, at), m.observe(h, at); got != want {
			t.Fatalf("event %d: window says duplicate=%v, model %v", i, got, want)
		}
		peak = max(peak, bigBytes()-base)
		want := 0 // blocks lent: one while the window is in a class
		if s.win.cls != nil {
			want = 1
			inClass++
		}
		if n := lentBlocks() - baseLent; n != want {
			t.Fatalf("event %d: %d blocks lent to a window of %d slots, want %d", i, n, len(s.win.ring), want)
		}
	}
	for i := range 250_000 { // a burst: ~200,000 distinct keys, some repeated
		observe(i, fmt.Sprint(rng.Intn(400_000)), int64(i/10))
	}
	if s.Len() != len(m.seen) {
		t.Fatalf("window holds %d, model %d", s.Len(), len(m.seen))
	}
	if s.win.big == nil || peak < 4<<20 || inClass == 0 {
		t.Fatalf("a window of %d slots is in the heap (mapped: %d bytes; %d events in a class block)", len(s.win.ring), peak, inClass)
	}
	for i := range 2000 { // quiet: the burst leaves the window
		observe(i, fmt.Sprint("quiet", i), 200_000+int64(i))
	}
	if s.Len() != len(m.seen) || s.win.big != nil {
		t.Fatalf("after the burst: %d entries (model %d), %d slots, mapped %v", s.Len(), len(m.seen), len(s.win.ring), s.win.big != nil)
	}
	if got := bigBytes() - base; got != 0 {
		t.Errorf("after shrinking %d bytes are still mapped", got)
	}
	for i := range 100_000 {
		observe(i, fmt.Sprint("again", i), 300_000+int64(i))
	}
	s.Close()
	if got := bigBytes() - base; got != 0 {
		t.Errorf("after Close %d bytes are still mapped", got)
	}
	if n := lentBlocks() - baseLent; n != 0 {
		t.Errorf("after Close %d class blocks are still lent", n)
	}
	if s.Len() != 0 || s.observe(xxh3.HashString128("again1"), 400_000) {
		t.Errorf("a closed stage holds %d entries", s.Len())
	}
}
