package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/pipeline/delivery"
)

const hour12 = t0 / 3_600_000 // the unix hour of t0

// writeMixed buffers [first, last] at Kafka time at(off), every 5th
// rejected, every 7th a duplicate and every 11th filtered.
func (o *owner) writeMixed(t *testing.T, first, last int64, at func(off int64) int64) delivery.Range {
	t.Helper()
	b := &pipeline.Batch{Topic: topic, Partition: part, SealedBefore: o.ck.State().SealedBefore}
	var maxT int64
	for off := first; off <= last; off++ {
		e := pipeline.Event{Topic: topic, Partition: part, Offset: off, KafkaTime: at(off),
			EventID: fmt.Sprint("e", off), EventName: "page_view", EventTime: t0 + off}
		switch {
		case off%5 == 0:
			e.Reject("decode", "invalid JSON")
		case off%7 == 0:
			e.State, e.RejectStage = pipeline.Dropped, "dedupe"
		case off%11 == 0:
			e.State, e.RejectStage = pipeline.Dropped, "filter"
		}
		maxT = max(maxT, e.KafkaTime)
		b.Events = append(b.Events, e)
	}
	if err := o.sink.Write(b); err != nil {
		t.Fatal(err)
	}
	return delivery.Range{First: first, Last: last, LastKafkaTime: at(last), MaxKafkaTime: maxT}
}

// count is the expected HourCount of offsets [first, last] (writeMixed).
func count(h, first, last int64) pipeline.HourCount {
	c := pipeline.HourCount{Hour: h}
	for off := first; off <= last; off++ {
		c.Records++
		switch {
		case off%5 == 0:
			c.Rejected++
		case off%7 == 0:
			c.Duplicates++
		case off%11 == 0:
			c.Filtered++
		default:
			c.Events++
		}
	}
	return c
}

func plus(a, b pipeline.HourCount) pipeline.HourCount {
	a.Records += b.Records
	a.Events += b.Events
	a.Rejected += b.Rejected
	a.Duplicates += b.Duplicates
	a.Filtered += b.Filtered
	return a
}

// TestLedgerReconcilesEveryRecord: each done range adds its records, by
// hour and disposition, and its files to the ledger; the sealed time
// follows the latest Kafka time; a record later than the sealed time's
// hour is placed in the sealed hour; the ledger of a re-run range counts
// it once.
func TestLedgerReconcilesEveryRecord(t *testing.T) {
	dir := dirStore(t)
	fs := &faultyStore{Store: dir}
	o := newOwner(t, fs)
	minute := func(off int64) int64 { return t0 + off*60_000 } // offsets 0-59 in 12:00, 60- in 13:00
	if _, err := o.f.Flush(context.Background(), o.writeMixed(t, 0, 69, minute)); err != nil {
		t.Fatal(err)
	}
	st := o.ck.State()
	if st.SealedBefore != t0+3_600_000 {
		t.Fatalf("sealed before %d, want 13:00 (%d)", st.SealedBefore, t0+3_600_000)
	}
	if l := st.Ledger(hour12); l.HourCount != count(hour12, 0, 59) || len(l.Files) != 2 {
		t.Errorf("hour 12: %+v, want %+v and an events and a rejected file", l, count(hour12, 0, 59))
	}

	// Offsets 70-89 carry 12:xx times (a late clock): sealed, so they go
	// to 13:00. The done write fails once; the retry counts them once.
	late := func(off int64) int64 { return t0 + 30*60_000 }
	fs.failPutIf = func(n int) bool { return n == 4 }
	rng := o.writeMixed(t, 70, 89, late)
	if _, err := o.f.Flush(context.Background(), rng); !delivery.IsRetryable(err) {
		t.Fatalf("flush: %v, want retryable", err)
	}
	// The owner dies; the next re-runs the pending range.
	next := newOwner(t, dir)
	if p := next.ck.State().Pending; p == nil || p.First != 70 || p.Last != 89 {
		t.Fatalf("pending %+v", p)
	}
	if _, err := next.f.Flush(context.Background(), next.writeMixed(t, 70, 89, late)); err != nil {
		t.Fatal(err)
	}
	st = next.ck.State()
	if l := st.Ledger(hour12); l.HourCount != count(hour12, 0, 59) {
		t.Errorf("hour 12 changed after it was sealed: %+v", l.HourCount)
	}
	l13 := st.Ledger(hour12 + 1)
	if want := plus(count(hour12+1, 60, 69), count(hour12+1, 70, 89)); l13.HourCount != want {
		t.Errorf("hour 13: %+v, want %+v", l13.HourCount, want)
	}
	if !slices.Equal(l13.Ranges, []delivery.OffsetRange{{First: 0, Last: 89}}) {
		t.Errorf("hour 13 ranges %v, want [0, 89] (merged)", l13.Ranges)
	}
	var keys []string
	for _, f := range l13.Files {
		keys = append(keys, f.Key)
	}
	want := []string{
		"events/date=2026-03-01/hour=13/events+3+00000000000000000000+00000000000000000069.parquet",
		"rejected/date=2026-03-01/hour=13/events+3+00000000000000000000+00000000000000000069.parquet",
		"events/date=2026-03-01/hour=13/events+3+00000000000000000070+00000000000000000089.parquet",
		"rejected/date=2026-03-01/hour=13/events+3+00000000000000000070+00000000000000000089.parquet",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("hour 13 files %v", keys)
	}
	for _, f := range l13.Files {
		if f.Output == "events" && (f.MinEventTime < t0 || f.MaxEventTime > t0+89 || f.MinEventTime > f.MaxEventTime) {
			t.Errorf("%s: event times [%d, %d]", f.Key, f.MinEventTime, f.MaxEventTime)
		}
	}
	if last := st.LastFiles(); len(last) != 2 || last[0].Last != 89 || last[0].Hour != hour12+1 {
		t.Errorf("last files %+v", last)
	}

	// Hours whose manifests exist leave the ledger at the next done write.
	o3 := newOwner(t, dir)
	o3.f = delivery.NewFlusher(o3.ck, o3.sink, o3.commit, delivery.Hooks{HandedOff: func() int64 { return t0 + 3_600_000 }})
	if _, err := o3.f.Flush(context.Background(), o3.writeMixed(t, 90, 99, minute)); err != nil {
		t.Fatal(err)
	}
	if st := o3.ck.State(); len(st.Hours) != 1 || st.Hours[0].Hour != hour12+1 {
		t.Errorf("after hand-off of hour 12 the ledger holds %+v", st.Hours)
	}
}

// TestHooksAroundDone: the range is done only after BeforeDone succeeds
// (a failure leaves it pending, and the retry does not upload again);
// AfterDone gets the range's files after the done state.
func TestHooksAroundDone(t *testing.T) {
	dir := dirStore(t)
	o := newOwner(t, dir)
	var before, after int
	var announced []delivery.LedgerFile
	o.f = delivery.NewFlusher(o.ck, o.sink, o.commit, delivery.Hooks{
		BeforeDone: func(context.Context) error {
			before++
			if before == 1 {
				return delivery.Retryable("dead letters", errors.New("broker unreachable"))
			}
			return nil
		},
		AfterDone: func(_ context.Context, files []delivery.LedgerFile) error {
			after++
			if st := o.ck.State(); st.Pending != nil || st.Next != 100 {
				t.Errorf("AfterDone before the done state: %+v", st)
			}
			if after == 1 {
				return delivery.Retryable("notify", errors.New("broker unreachable"))
			}
			announced = files
			return nil
		},
	})
	rng := o.write(t, 0, 99)
	if _, err := o.f.Flush(context.Background(), rng); !delivery.IsRetryable(err) {
		t.Fatalf("flush: %v", err)
	}
	if st := newOwner(t, dir).ck.State(); st.Pending == nil || st.Next != -1 {
		t.Fatalf("after a failed BeforeDone the state is %+v, want the range pending", st)
	}
	if len(o.commit.next) != 0 {
		t.Fatal("committed before done")
	}
	if _, err := o.f.Flush(context.Background(), rng); !delivery.IsRetryable(err) {
		t.Fatalf("flush: %v, want the AfterDone failure", err)
	}
	if len(o.commit.next) != 0 {
		t.Fatal("committed before the notifications")
	}
	if _, err := o.f.Flush(context.Background(), rng); err != nil {
		t.Fatal(err)
	}
	if before != 2 || after != 2 || len(announced) != 2 || !slices.Equal(o.commit.next, []int64{100}) {
		t.Errorf("before %d, after %d, announced %d files, commits %v", before, after, len(announced), o.commit.next)
	}
}

// TestSealIdle: an idle partition seals once per hour boundary; without a
// state it gets one at the end offset.
func TestSealIdle(t *testing.T) {
	dir := dirStore(t)
	o := newOwner(t, dir)
	if err := o.ck.SealIdle(context.Background(), t0, 42, 0); err != nil {
		t.Fatal(err)
	}
	st := newOwner(t, dir).ck.State()
	if st.Next != 42 || st.SealedBefore != t0 || st.Pending != nil {
		t.Errorf("state %+v", st)
	}
	if err := o.ck.SealIdle(context.Background(), t0, 50, 0); err != nil {
		t.Fatal(err)
	}
	if st := o.ck.State(); st.Next != 42 {
		t.Errorf("a second seal moved next to %d", st.Next)
	}
}
