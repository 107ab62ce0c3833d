package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/internal/synth"
	"github.com/sluicedata/sluice/internal/testkit"
	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/pipeline/delivery"
	"github.com/sluicedata/sluice/pipeline/kafka"
	"github.com/sluicedata/sluice/sinks/objstore"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/stages/decode"
)

func produce(t *testing.T, brokers []string, topic string, n int, seed uint64, pace time.Duration) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Error(err)
		return
	}
	defer cl.Close()
	g := synth.New(synth.Options{Seed: seed, DupRate: 0.02, BadRate: 0.01})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range n {
		v, _ := g.Append(nil)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
		if pace > 0 && i%200 == 199 {
			time.Sleep(pace)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		t.Error(err)
	}
}

func newRunner(t *testing.T, brokers []string, topic, group string, store pqsink.Store, opts kafka.Options) *kafka.Runner {
	t.Helper()
	sink, err := pqsink.New(store, pqsink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts.Brokers, opts.Topics, opts.Group = brokers, []string{topic}, group
	if opts.SessionTimeout == 0 {
		opts.SessionTimeout = 6 * time.Second
	}
	if opts.RollMaxAge == 0 {
		opts.RollMaxAge = 300 * time.Millisecond
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := kafka.NewRunner(opts, func(string, int32) ([]pipeline.Stage, error) {
		return []pipeline.Stage{decode.New(nil)}, nil
	}, sink, log)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// member runs a runner until stopped.
type member struct {
	r      *kafka.Runner
	cancel context.CancelFunc
	done   chan error
}

func start(r *kafka.Runner) *member {
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{r: r, cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- r.Run(ctx) }()
	return m
}

func (m *member) stop(t *testing.T) {
	t.Helper()
	m.cancel()
	select {
	case err := <-m.done:
		if err != nil {
			t.Fatalf("runner: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("runner did not drain in 60s")
	}
}

func checkOnce(t *testing.T, dir string, ends map[int32]int64) {
	t.Helper()
	out := testkit.ReadAll(t, dir)
	seen := out.CountByLineage()
	var want int64
	for p, end := range ends {
		want += end
		for off := int64(0); off < end; off++ {
			if n := seen[testkit.Lineage{Partition: p, Offset: off}]; n != 1 {
				t.Errorf("partition %d offset %d in %d rows, want 1", p, off, n)
			}
		}
	}
	if int64(out.Total()) != want {
		t.Errorf("%d rows for %d records", out.Total(), want)
	}
}

// dirStore is a directory store in a new temporary directory, and that
// directory.
func dirStore(t *testing.T) (string, *objstore.Dir) {
	t.Helper()
	dir := t.TempDir()
	store, err := objstore.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, store
}

// TestRebalance: a second member joins mid-stream and the first leaves;
// revoked partitions are flushed and committed before they move, so every
// record is in exactly one row.
func TestRebalance(t *testing.T) {
	const topic = "events"
	kc := testkit.Kafka(t, topic, 6)
	brokers := kc.ListenAddrs()
	dir, store := dirStore(t)
	var wg sync.WaitGroup
	wg.Add(1)
	// About 12s of production, so that the second member joins and the
	// first leaves while records still arrive, even under -race.
	go func() { defer wg.Done(); produce(t, brokers, topic, 40000, 1, 60*time.Millisecond) }()

	a := start(newRunner(t, brokers, topic, "g", store, kafka.Options{}))
	testkit.WaitFor(t, 30*time.Second, "first member consuming", func() bool { return a.r.Stats().RecordsFlushed.Load() > 2000 })
	b := start(newRunner(t, brokers, topic, "g", store, kafka.Options{}))
	testkit.WaitFor(t, 30*time.Second, "second member consuming", func() bool { return b.r.Stats().RecordsFlushed.Load() > 1000 })
	a.stop(t)
	wg.Wait()
	deliveredOnce(t, b, brokers, topic, dir, 30*time.Second)
}

// deliveredOnce waits (up to wait) until the output under dir holds as many
// rows as the topic has records, stops m, and checks that every record is
// in exactly one row and that group g committed every partition to its end.
func deliveredOnce(t *testing.T, m *member, brokers []string, topic, dir string, wait time.Duration) {
	t.Helper()
	ends := testkit.EndOffsets(t, brokers, topic)
	var total int64
	for _, e := range ends {
		total += e
	}
	testkit.WaitFor(t, wait, "every record delivered", func() bool {
		return int64(testkit.ReadOutput(t, dir).Total()) >= total
	})
	m.stop(t)
	checkOnce(t, dir, ends)
	committed := testkit.Committed(t, brokers, "g", topic)
	for p, end := range ends {
		if committed[p] != end {
			t.Errorf("partition %d committed %d, end %d", p, committed[p], end)
		}
	}
}

// blocking fails every Put while blocked, like an unreachable store.
type blocking struct {
	*objstore.Dir
	mu      sync.Mutex
	blocked bool
}

func (s *blocking) set(b bool) { s.mu.Lock(); s.blocked = b; s.mu.Unlock() }

func (s *blocking) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	s.mu.Lock()
	b := s.blocked
	s.mu.Unlock()
	if b {
		return fmt.Errorf("store unreachable (injected)")
	}
	return s.Dir.Put(ctx, key, r, size)
}

// TestStoreOutageCommitsNothing: while the store fails, no offset moves
// past what is written, readiness says why, and the data arrives once the
// store is back.
func TestStoreOutageCommitsNothing(t *testing.T) {
	const topic = "events"
	kc := testkit.Kafka(t, topic, 2)
	brokers := kc.ListenAddrs()
	dir, d := dirStore(t)
	store := &blocking{Dir: d, blocked: true}
	produce(t, brokers, topic, 3000, 2, 0)

	m := start(newRunner(t, brokers, topic, "g", store, kafka.Options{RetryBackoff: 20 * time.Millisecond, RetryBackoffMax: 100 * time.Millisecond}))
	testkit.WaitFor(t, 30*time.Second, "flush failures", func() bool { return m.r.Stats().FlushErrors.Load() >= 4 })
	if err := m.r.Ready(); err == nil {
		t.Error("ready while the store is failing")
	}
	for p, off := range testkit.Committed(t, brokers, "g", topic) {
		if off > 0 {
			t.Errorf("partition %d committed %d with nothing written", p, off)
		}
	}
	if n := testkit.ReadAll(t, dir).Total(); n != 0 {
		t.Errorf("%d rows visible while the store fails", n)
	}
	store.set(false)
	testkit.WaitFor(t, 30*time.Second, "recovery", func() bool { return testkit.ReadOutput(t, dir).Total() >= 3000 })
	testkit.WaitFor(t, 10*time.Second, "ready again", func() bool { return m.r.Ready() == nil })
	m.stop(t)
	checkOnce(t, dir, testkit.EndOffsets(t, brokers, topic))
}

// TestRollLimits: files never hold more than RollMaxRows records' rows,
// and an idle partition still flushes by age.
func TestRollLimits(t *testing.T) {
	const topic = "events"
	kc := testkit.Kafka(t, topic, 1)
	brokers := kc.ListenAddrs()
	dir, store := dirStore(t)
	produce(t, brokers, topic, 2500, 3, 0)
	m := start(newRunner(t, brokers, topic, "g", store, kafka.Options{RollMaxRows: 1000, RollMaxAge: time.Second}))
	// 2 flushes by rows, then the last 500 by age with no new data.
	testkit.WaitFor(t, 20*time.Second, "age flush of an idle partition", func() bool { return testkit.ReadOutput(t, dir).Total() == 2500 })
	if f := m.r.Stats().Flushes.Load(); f != 3 {
		t.Errorf("%d flushes, want 3", f)
	}
	m.stop(t)
	out := testkit.ReadAll(t, dir)
	ranges := map[string]bool{}
	for _, f := range out.Files {
		ranges[f[len(f)-50:]] = true
	}
	if len(ranges) != 3 {
		t.Errorf("offset ranges %v, want 3", ranges)
	}
	checkOnce(t, dir, testkit.EndOffsets(t, brokers, topic))
}

// TestMemoryLimitShrinksBeforeFlushing: past MemoryLimit a partition whose
// files are built on disk writes its open row groups out and goes on (no
// early flush, no small files); with files built in memory it must flush
// early instead. Either way every record is in exactly one row.
func TestMemoryLimitShrinksBeforeFlushing(t *testing.T) {
	for _, spool := range []bool{true, false} {
		t.Run(fmt.Sprintf("spool=%v", spool), func(t *testing.T) {
			const topic, n, limit = "events", 100000, 3 << 20
			kc := testkit.Kafka(t, topic, 1)
			brokers := kc.ListenAddrs()
			dir, store := dirStore(t)
			produce(t, brokers, topic, n, 5, 0)
			o := pqsink.Options{}
			if spool {
				o.SpoolDir = t.TempDir()
			}
			sink, err := pqsink.New(store, o)
			if err != nil {
				t.Fatal(err)
			}
			defer sink.Close()
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			r, err := kafka.NewRunner(kafka.Options{
				Brokers: brokers, Topics: []string{topic}, Group: "g", SessionTimeout: 6 * time.Second,
				// 3 MiB: two open writers (events, rejected: ~512 KiB each)
				// and the rejected file's small row group leave more than
				// the 1 MiB Shrink needs in the events row group before the
				// limit is passed; at 2 MiB a timing where the limit fell
				// between 0.5 and 1 MiB of events row group flushed early.
				RollMaxAge: time.Hour, MemoryLimit: limit,
			}, func(string, int32) ([]pipeline.Stage, error) { return []pipeline.Stage{decode.New(nil)}, nil }, sink, log)
			if err != nil {
				t.Fatal(err)
			}
			m := start(r)
			testkit.WaitFor(t, 30*time.Second, "all records processed", func() bool { return r.Stats().RecordsIn.Load() == n })
			flushes := r.Stats().Flushes.Load()
			m.stop(t)
			sizes := fileSizes(t, dir)
			if spool && flushes != 0 {
				t.Errorf("%d early flushes with files on disk, want 0", flushes)
			}
			if spool {
				var biggest int64
				for _, size := range sizes {
					biggest = max(biggest, size)
				}
				if biggest <= limit {
					t.Errorf("largest file %d bytes: the test's events no longer pass the %d-byte limit", biggest, limit)
				}
			} else {
				// The events come to about 1.5 times the limit as one file;
				// held in memory, no file may grow past the limit before
				// it is flushed (how many flushes that takes depends on the
				// batches a loaded machine polls, not on the rule).
				if flushes < 1 {
					t.Errorf("%d early flushes with files in memory over a 3 MiB limit", flushes)
				}
				for path, size := range sizes {
					if size > limit {
						t.Errorf("%s: %d bytes held in memory, over the %d-byte limit", path, size, limit)
					}
				}
			}
			checkOnce(t, dir, testkit.EndOffsets(t, brokers, topic))
		})
	}
}

// fileSizes maps every file under dir to its size.
func fileSizes(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	sizes := map[string]int64{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		sizes[path] = info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sizes
}

// brokenSink's partitions cannot finish a file: every Flush wraps
// ErrSinkBroken, as a full spool disk makes the Parquet sink do.
type brokenSink struct{ pipeline.Sink }

type brokenPartition struct{ pipeline.PartitionSink }

func (s brokenSink) OpenPartition(topic string, p int32) (pipeline.PartitionSink, error) {
	ps, err := s.Sink.OpenPartition(topic, p)
	return brokenPartition{ps}, err
}

func (brokenPartition) Flush(context.Context, int64, int64) (pipeline.FlushResult, error) {
	return pipeline.FlushResult{}, fmt.Errorf("parquet close: %w", pipeline.ErrSinkBroken)
}

// TestBrokenSinkStopsTheRunner: a sink that says retrying cannot help stops
// the process with that error (no endless retry), commits nothing, and
// writes nothing.
func TestBrokenSinkStopsTheRunner(t *testing.T) {
	const topic = "events"
	kc := testkit.Kafka(t, topic, 1)
	brokers := kc.ListenAddrs()
	dir, store := dirStore(t)
	produce(t, brokers, topic, 2000, 4, 0)
	sink, err := pqsink.New(store, pqsink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := kafka.NewRunner(kafka.Options{
		Brokers: brokers, Topics: []string{topic}, Group: "g", SessionTimeout: 6 * time.Second,
		RollMaxRows: 500, RetryBackoff: 10 * time.Millisecond,
	}, func(string, int32) ([]pipeline.Stage, error) { return []pipeline.Stage{decode.New(nil)}, nil }, brokenSink{sink}, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, pipeline.ErrSinkBroken) {
			t.Fatalf("runner stopped with %v, want ErrSinkBroken", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("runner still retrying a broken sink after 30s")
	}
	if n := r.Stats().FlushErrors.Load(); n > 1 {
		t.Errorf("%d flush retries of a broken sink", n)
	}
	for p, off := range testkit.Committed(t, brokers, "g", topic) {
		if off > 0 {
			t.Errorf("partition %d committed %d with nothing written", p, off)
		}
	}
	if n := testkit.ReadAll(t, dir).Total(); n != 0 {
		t.Errorf("%d rows written by a broken sink", n)
	}
}

// TestFencedPartitionRestarts: another writer moves the partitions' state
// while this member holds them, as a zombie does whose session has not
// yet expired. The member's run of each partition ends without writing
// its buffered records and starts again from the state as it is now,
// where before the member kept the partitions without consuming them
// until the next rebalance. Every record is still in exactly one row,
// and the committed offsets reach the end.
func TestFencedPartitionRestarts(t *testing.T) {
	const topic = "events"
	kc := testkit.Kafka(t, topic, 2)
	brokers := kc.ListenAddrs()
	dir, store := dirStore(t)
	state := objstore.StateStore{Store: store}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); produce(t, brokers, topic, 12000, 3, 40*time.Millisecond) }()

	m := start(newRunner(t, brokers, topic, "g", store, kafka.Options{State: state, RollMaxAge: time.Second}))
	testkit.WaitFor(t, 30*time.Second, "both partitions delivering", func() bool {
		for p := range int32(2) {
			if _, found, err := delivery.Load(context.Background(), state, "g", topic, p); err != nil || !found {
				return false
			}
		}
		return true
	})
	// The other writer writes each state again as it is: a new version,
	// the same position. Its write may lose to the member's own (then it
	// reads and tries again).
	for p := range int32(2) {
		for attempt := 0; ; attempt++ {
			ck, _, err := delivery.Load(context.Background(), state, "g", topic, p)
			if err == nil {
				if err = ck.Save(context.Background(), ck.State()); err == nil {
					break
				}
			}
			if attempt == 20 {
				t.Fatalf("partition %d: the other writer could not write the state: %v", p, err)
			}
		}
	}
	testkit.WaitFor(t, 30*time.Second, "both partitions restarted", func() bool { return m.r.Stats().Restarts.Load() >= 2 })
	if n := m.r.Stats().StateConflicts.Load(); n < 2 {
		t.Errorf("%d state conflicts, want at least 2", n)
	}
	wg.Wait()
	deliveredOnce(t, m, brokers, topic, dir, 60*time.Second)
}
