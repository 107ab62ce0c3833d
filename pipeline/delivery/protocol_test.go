package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/pipeline/delivery"
	"github.com/sluicedata/sluice/sinks/objstore"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
)

// The flush protocol against a real directory store and the real Parquet
// sink, without a broker: each test stops a partition's owner at one step
// (the store fails and the owner dies), starts a new owner from the state
// it left, and checks what the new owner does and what is in the store.

const (
	group = "g"
	topic = "events"
	part  = int32(3)
	t0    = int64(1772366400000) // 2026-03-01T12:00:00Z
)

// faultyStore fails the operations its hooks pick.
type faultyStore struct {
	objstore.Store
	failPut    func(key string) bool // data objects
	failPutIf  func(n int) bool      // the n-th state write, from 1
	putIfCalls atomic.Int32
}

func (s *faultyStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if s.failPut != nil && s.failPut(key) {
		return fmt.Errorf("put %s: connection reset by peer", key)
	}
	return s.Store.Put(ctx, key, r, size)
}

func (s *faultyStore) PutIf(ctx context.Context, key string, data []byte, version string) (string, error) {
	n := int(s.putIfCalls.Add(1))
	if s.failPutIf != nil && s.failPutIf(n) {
		return "", errors.New("503 Slow Down")
	}
	return s.Store.PutIf(ctx, key, data, version)
}

// commits records the offsets committed.
type commits struct {
	next []int64
	err  error
}

func (c *commits) Commit(_ context.Context, next int64) error {
	c.next = append(c.next, next)
	return c.err
}

// owner is one partition owner: its state handle, sink and protocol.
type owner struct {
	ck     *delivery.Checkpoint
	found  bool
	sink   pipeline.PartitionSink
	f      *delivery.Flusher
	commit *commits
}

func newOwner(t *testing.T, store objstore.Store) *owner {
	t.Helper()
	ck, found, err := delivery.Load(context.Background(), objstore.StateStore{Store: store}, group, topic, part)
	if err != nil {
		t.Fatal(err)
	}
	s, err := pqsink.New(store, pqsink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ps, _ := s.OpenPartition(topic, part)
	o := &owner{ck: ck, found: found, sink: ps, commit: &commits{}}
	o.f = delivery.NewFlusher(ck, ps, o.commit, delivery.Hooks{})
	return o
}

// write buffers the records [first, last], spread over two Kafka hours.
func (o *owner) write(t *testing.T, first, last int64) delivery.Range {
	t.Helper()
	b := &pipeline.Batch{Topic: topic, Partition: part}
	for off := first; off <= last; off++ {
		b.Events = append(b.Events, pipeline.Event{Topic: topic, Partition: part, Offset: off,
			KafkaTime: t0 + off*60_000, EventID: fmt.Sprint("e", off), EventName: "page_view", EventTime: t0})
	}
	if err := o.sink.Write(b); err != nil {
		t.Fatal(err)
	}
	return delivery.Range{First: first, Last: last, LastKafkaTime: t0 + last*60_000, MaxKafkaTime: t0 + last*60_000}
}

func files(t *testing.T, store objstore.Store) []string {
	t.Helper()
	keys, err := store.List(context.Background(), "events/")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

func dirStore(t *testing.T) objstore.Store {
	t.Helper()
	d, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestFlushRecordsDoneThenCommits(t *testing.T) {
	store := dirStore(t)
	o := newOwner(t, store)
	if o.found {
		t.Fatal("state before the first flush")
	}
	res, err := o.f.Flush(context.Background(), o.write(t, 0, 99))
	if err != nil || res.CommitErr != nil {
		t.Fatal(err, res.CommitErr)
	}
	if len(res.Files) != 2 || len(files(t, store)) != 2 {
		t.Fatalf("files %v, stored %v", res.Files, files(t, store))
	}
	st := o.ck.State()
	if st.Next != 100 || st.Pending != nil || st.LastKafkaTime != t0+99*60_000 {
		t.Errorf("state %+v", st)
	}
	if !slices.Equal(o.commit.next, []int64{100}) {
		t.Errorf("commits %v", o.commit.next)
	}
	// The next owner resumes after the range.
	if o2 := newOwner(t, store); !o2.found || o2.ck.State().Next != 100 || o2.ck.State().Pending != nil {
		t.Errorf("next owner sees %+v", o2.ck.State())
	}
}

// TestCrashPoints: an owner dies at each step of a flush; the next owner
// finds the state that step left and, re-running what it says, ends with
// every record in exactly one file under the names of the first run.
func TestCrashPoints(t *testing.T) {
	for _, tc := range []struct {
		name string
		// fault makes the first owner's flush fail at one step.
		fault func(s *faultyStore)
		// After the crash: is the range pending, and how many files exist?
		pending bool
		stored  int
	}{
		// State writes: the first range's pending (1) and done (2), then
		// this range's pending (3) and done (4).
		{"before the pending write", func(s *faultyStore) { s.failPutIf = func(n int) bool { return n == 3 } }, false, 0},
		{"after the pending write", func(s *faultyStore) { s.failPut = func(string) bool { return true } }, true, 0},
		{"after one of two uploads", func(s *faultyStore) {
			s.failPut = func(key string) bool { return strings.Contains(key, "hour=13") }
		}, true, 1},
		{"after the uploads, before done", func(s *faultyStore) { s.failPutIf = func(n int) bool { return n == 4 } }, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := dirStore(t)
			fs := &faultyStore{Store: dir}
			first := newOwner(t, fs)
			if _, err := first.f.Flush(context.Background(), first.write(t, 0, 9)); err != nil {
				t.Fatal(err) // a first range, done
			}
			tc.fault(fs)
			_, err := first.f.Flush(context.Background(), first.write(t, 10, 99))
			if !delivery.IsRetryable(err) {
				t.Fatalf("flush: %v, want a retryable error", err)
			}
			if slices.Contains(first.commit.next, 100) {
				t.Fatal("committed past a range that is not done")
			}
			// The owner dies here. The next one:
			next := newOwner(t, dir)
			st := next.ck.State()
			if (st.Pending != nil) != tc.pending || st.Next != 10 {
				t.Fatalf("state after the crash: %+v, want pending %v and next 10", st, tc.pending)
			}
			if n := len(files(t, dir)) - 1; n != tc.stored { // less the first range's file
				t.Errorf("%d files of the range stored before the crash, want %d", n, tc.stored)
			}
			rng := delivery.Range{First: 10, Last: 99}
			if st.Pending != nil {
				rng = delivery.Range{First: st.Pending.First, Last: st.Pending.Last}
			}
			if rng.First != 10 || rng.Last != 99 {
				t.Fatalf("re-run of [%d, %d]", rng.First, rng.Last)
			}
			if _, err := next.f.Flush(context.Background(), next.write(t, rng.First, rng.Last)); err != nil {
				t.Fatal(err)
			}
			got := files(t, dir)
			want := []string{
				"events/date=2026-03-01/hour=12/events+3+00000000000000000000+00000000000000000009.parquet",
				"events/date=2026-03-01/hour=12/events+3+00000000000000000010+00000000000000000099.parquet",
				"events/date=2026-03-01/hour=13/events+3+00000000000000000010+00000000000000000099.parquet",
			}
			if !slices.Equal(got, want) {
				t.Errorf("files after the re-run:\n%s", strings.Join(got, "\n"))
			}
			if st := next.ck.State(); st.Next != 100 || st.Pending != nil {
				t.Errorf("state after the re-run %+v", st)
			}
		})
	}
}

// TestRetryResumesAtTheFailedStep: a retry after a failed done write does
// not write the pending state or upload again.
func TestRetryResumesAtTheFailedStep(t *testing.T) {
	dir := dirStore(t)
	fs := &faultyStore{Store: dir}
	var puts atomic.Int32
	o := newOwner(t, fs)
	fs.failPut = func(string) bool { puts.Add(1); return false }
	fs.failPutIf = func(n int) bool { return n == 2 } // the done write, once
	rng := o.write(t, 0, 99)
	_, err := o.f.Flush(context.Background(), rng)
	var re *delivery.RetryableError
	if !errors.As(err, &re) || re.Step != "state write" {
		t.Fatalf("flush: %v, want a retryable state write", err)
	}
	if _, err := o.f.Flush(context.Background(), delivery.Range{First: 0, Last: 5}); err == nil {
		t.Error("a different range while one is unfinished was accepted")
	}
	if _, err := o.f.Flush(context.Background(), rng); err != nil {
		t.Fatal(err)
	}
	if n := fs.putIfCalls.Load(); n != 3 {
		t.Errorf("%d state writes, want 3 (pending, failed done, done)", n)
	}
	if n := puts.Load(); n != 2 {
		t.Errorf("%d uploads, want 2 (one per file, once)", n)
	}
}

// TestZombieIsFenced: an owner that lost its partition (a new owner wrote
// the state since) cannot record its range, and gets ErrFenced.
func TestZombieIsFenced(t *testing.T) {
	dir := dirStore(t)
	zombie := newOwner(t, dir)
	if _, err := zombie.f.Flush(context.Background(), zombie.write(t, 0, 9)); err != nil {
		t.Fatal(err)
	}
	owner := newOwner(t, dir)
	if _, err := owner.f.Flush(context.Background(), owner.write(t, 10, 19)); err != nil {
		t.Fatal(err)
	}
	_, err := zombie.f.Flush(context.Background(), zombie.write(t, 10, 29))
	if !errors.Is(err, delivery.ErrFenced) || !errors.Is(err, delivery.ErrStateConflict) {
		t.Fatalf("zombie flush: %v, want ErrFenced", err)
	}
	if slices.Contains(zombie.commit.next, 30) {
		t.Error("the zombie committed")
	}
	if st := newOwner(t, dir).ck.State(); st.Next != 20 || st.Pending != nil {
		t.Errorf("state moved by the zombie: %+v", st)
	}
}

// brokenSink cannot finish its files.
type brokenSink struct{ pipeline.PartitionSink }

func (brokenSink) Flush(context.Context, int64, int64) (pipeline.FlushResult, error) {
	return pipeline.FlushResult{}, fmt.Errorf("%w: no space left on device", pipeline.ErrSinkBroken)
}

func TestBrokenSinkAndStop(t *testing.T) {
	dir := dirStore(t)
	o := newOwner(t, dir)
	f := delivery.NewFlusher(o.ck, brokenSink{o.sink}, o.commit, delivery.Hooks{})
	if _, err := f.Flush(context.Background(), delivery.Range{First: 0, Last: 9}); !errors.Is(err, delivery.ErrBroken) || delivery.IsRetryable(err) {
		t.Errorf("broken sink: %v, want ErrBroken", err)
	}
	if st := newOwner(t, dir).ck.State(); st.Pending == nil {
		t.Error("the range a broken sink could not finish is not pending: the next owner would not re-run it")
	}

	o = newOwner(t, dirStore(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := o.f.Flush(ctx, o.write(t, 0, 9)); !errors.Is(err, delivery.ErrStopped) {
		t.Errorf("canceled flush: %v, want ErrStopped", err)
	}
}

func TestCommitFailureKeepsTheRange(t *testing.T) {
	o := newOwner(t, dirStore(t))
	o.commit.err = errors.New("NOT_COORDINATOR")
	res, err := o.f.Flush(context.Background(), o.write(t, 0, 9))
	if err != nil || res.CommitErr == nil || o.ck.State().Next != 10 {
		t.Errorf("flush %v, commit error %v, state %+v: want done with the commit error reported", err, res.CommitErr, o.ck.State())
	}
}

func TestRetry(t *testing.T) {
	calls := 0
	var waits []time.Duration
	err := delivery.Retry(context.Background(), delivery.Backoff{Initial: time.Millisecond, Max: 3 * time.Millisecond},
		func(_ error, wait time.Duration) { waits = append(waits, wait) },
		func() error {
			calls++
			if calls < 5 {
				return delivery.Retryable("upload", errors.New("reset"))
			}
			return nil
		})
	if err != nil || calls != 5 || !slices.Equal(waits, []time.Duration{1e6, 2e6, 3e6, 3e6}) {
		t.Errorf("err %v calls %d waits %v", err, calls, waits)
	}
	permanent := errors.New("permanent")
	if err := delivery.Retry(context.Background(), delivery.Backoff{Initial: time.Millisecond}, nil, func() error { return permanent }); err != permanent {
		t.Errorf("a permanent error was retried or changed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = delivery.Retry(ctx, delivery.Backoff{Initial: time.Millisecond, Max: time.Millisecond}, nil,
		func() error { return delivery.Retryable("state write", errors.New("down")) })
	if !errors.Is(err, delivery.ErrStopped) {
		t.Errorf("retry past the context: %v", err)
	}
}
