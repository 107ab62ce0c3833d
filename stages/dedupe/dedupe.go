// Package dedupe drops repeated events of one partition within a window of
// Kafka record time: the first occurrence (lowest offset) survives. The
// window holds 128-bit hashes of the key, never the key strings, and is
// bounded in entries. Decisions depend only on the records, so a range
// re-run after a crash drops exactly what the first run dropped, provided
// the window is rebuilt first from the records before the start offset
// (the runner does that through Warm).
package dedupe

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/zeebo/xxh3"

	"github.com/sluicedata/sluice/pipeline"
)

// StageName is the name of this stage.
const StageName = "dedupe"

// Keys a dedupe can be made on (joined when several).
var Keys = []string{"event_id", "event_name", "session_id", "app_id"}

// Options configure the stage.
type Options struct {
	// Key fields, default [event_id].
	Key []string
	// Window of Kafka record time. Default 10m.
	Window time.Duration
	// MaxEntries bounds the window per partition; past it the oldest
	// entries go early (counted in Stats.EvictedEarly). Default 1,000,000
	// (32 to 64 bytes an entry: 32 MiB at most for 1,000,000).
	MaxEntries int
}

// Validate reports every problem of o.
func (o Options) Validate() error {
	var errs []error
	for _, k := range o.Key {
		ok := false
		for _, known := range Keys {
			ok = ok || k == known
		}
		if !ok {
			errs = append(errs, fmt.Errorf("key %q: want one of %v", k, Keys))
		}
	}
	if o.Window < 0 {
		errs = append(errs, errors.New("window must not be negative"))
	}
	if o.MaxEntries < 0 {
		errs = append(errs, errors.New("max entries must not be negative"))
	}
	return errors.Join(errs...)
}

// Stats are shared by every partition's stage.
type Stats struct {
	Duplicates   atomic.Int64 // events dropped
	Entries      atomic.Int64 // entries in all windows now
	EvictedEarly atomic.Int64 // entries dropped before their time by MaxEntries
	Warmed       atomic.Int64 // entries loaded by window rebuilds
	Bytes        atomic.Int64 // memory held by all windows
}

// The stage rebuilds its window on assignment and gives its memory back.
var (
	_ pipeline.Warmer = (*Stage)(nil)
	_ pipeline.Closer = (*Stage)(nil)
)

// Stage is the dedupe of one partition.
type Stage struct {
	o      Options
	stats  *Stats
	fields []int
	win    *window // key hash → Kafka time of first occurrence, oldest first
	bytes  int64   // win.bytes() as last added to stats.Bytes
	buf    []byte
}

const (
	fEventID = iota
	fEventName
	fSessionID
	fAppID
)

// New returns the stage for one partition; stats may be shared.
func New(o Options, stats *Stats) (*Stage, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("dedupe: %w", err)
	}
	if len(o.Key) == 0 {
		o.Key = []string{"event_id"}
	}
	if o.Window == 0 {
		o.Window = 10 * time.Minute
	}
	if o.MaxEntries == 0 {
		o.MaxEntries = 1_000_000
	}
	if stats == nil {
		stats = &Stats{}
	}
	s := &Stage{o: o, stats: stats, win: newWindow()}
	s.account()
	for _, k := range o.Key {
		for i, known := range Keys {
			if k == known {
				s.fields = append(s.fields, i)
			}
		}
	}
	return s, nil
}

// Name implements pipeline.Stage.
func (s *Stage) Name() string { return StageName }

// Lookback is how far back in Kafka time the window reaches.
func (s *Stage) Lookback() time.Duration { return s.o.Window }

// Limit is the most entries the window holds.
func (s *Stage) Limit() int { return s.o.MaxEntries }

func (s *Stage) hash(e *pipeline.Event) xxh3.Uint128 {
	if len(s.fields) == 1 && s.fields[0] == fEventID {
		return xxh3.HashString128(e.EventID)
	}
	s.buf = s.buf[:0]
	for _, f := range s.fields {
		switch f {
		case fEventID:
			s.buf = append(s.buf, e.EventID...)
		case fEventName:
			s.buf = append(s.buf, e.EventName...)
		case fSessionID:
			s.buf = append(s.buf, e.SessionID...)
		case fAppID:
			s.buf = append(s.buf, e.AppID...)
		}
		s.buf = append(s.buf, 0)
	}
	return xxh3.Hash128(s.buf)
}

// Process implements pipeline.Stage: a kept event whose key was seen within
// the window before it is dropped.
func (s *Stage) Process(_ context.Context, b *pipeline.Batch) error {
	for i := range b.Events {
		e := &b.Events[i]
		if e.State != pipeline.Keep {
			continue
		}
		if s.observe(s.hash(e), e.KafkaTime) {
			e.State, e.RejectStage = pipeline.Dropped, "dedupe"
			s.stats.Duplicates.Add(1)
		}
	}
	s.account()
	return nil
}

// account publishes the window's memory to the shared stats.
func (s *Stage) account() {
	b := s.win.bytes()
	s.stats.Bytes.Add(b - s.bytes)
	s.bytes = b
}

// Warm feeds the window with earlier records (already decoded, in offset
// order) without dropping anything: it rebuilds the decisions the previous
// owner of the partition made.
func (s *Stage) Warm(b *pipeline.Batch) {
	n := 0
	for i := range b.Events {
		e := &b.Events[i]
		if e.State == pipeline.Keep {
			s.observe(s.hash(e), e.KafkaTime)
			n++
		}
	}
	s.stats.Warmed.Add(int64(n))
	s.account()
}

// observe records h at time ms and reports whether it was already in the
// window.
func (s *Stage) observe(h xxh3.Uint128, ms int64) bool {
	window := s.o.Window.Milliseconds()
	s.expire(ms - window)
	first, ok := s.win.get(h)
	if ok && ms-first <= window {
		return true
	}
	if !ok {
		for s.win.live >= s.o.MaxEntries && !s.win.empty() {
			if s.win.pop() {
				s.stats.Entries.Add(-1)
				s.stats.EvictedEarly.Add(1)
			}
		}
		s.stats.Entries.Add(1)
	}
	// A key seen before its window passed (out-of-order Kafka time) is
	// recorded anew; its old entry goes stale.
	s.win.put(h, ms)
	return false
}

// expire drops entries older than cut. Kafka time is nearly monotonic in a
// partition; an out-of-order old entry leaves with its successors.
func (s *Stage) expire(cut int64) {
	for !s.win.empty() && s.win.oldest().ms < cut {
		if s.win.pop() {
			s.stats.Entries.Add(-1)
		}
	}
}

// Len is the number of entries in the window.
func (s *Stage) Len() int { return s.win.live }

// Bytes is the memory the window holds.
func (s *Stage) Bytes() int64 { return s.win.bytes() }

// Close releases the window's entries from the shared count and gives its
// memory back; the stage is left empty.
func (s *Stage) Close() {
	s.stats.Entries.Add(-int64(s.win.live))
	s.stats.Bytes.Add(-s.bytes)
	s.win.free()
	s.bytes = 0
}
