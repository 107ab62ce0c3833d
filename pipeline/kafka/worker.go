package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/pipeline/delivery"
)

// errStopped: the worker gave its partition up (lost, taken over by
// another member, or a drain that timed out); nothing more is committed.
var errStopped = errors.New("partition worker stopped")

// workerStart is what a worker learns about its partition before its
// first record: its state (nil without a StateStore) and the pending range
// to re-run exactly, if any.
type workerStart struct {
	ck     *delivery.Checkpoint
	replay *delivery.OffsetRange
	start  int64 // first offset to process; -1 unknown
}

// worker owns one assigned partition: it runs the stages over the records
// in offset order, buffers output in its PartitionSink, and flushes the
// pending offset range [first, last] when a roll limit is reached, on
// drain, and by age on a ticker.
type worker struct {
	r         *Runner
	topic     string
	partition int32
	stages    []pipeline.Stage
	sink      pipeline.PartitionSink

	init      chan workerStart
	in        chan []*kgo.Record
	drainOnce sync.Once
	ctx       context.Context // canceled when the partition is lost or the drain times out
	cancel    context.CancelFunc
	done      chan struct{}

	flusher *delivery.Flusher     // the delivery protocol of this partition
	replay  *delivery.OffsetRange // a range that must be flushed exactly as it was

	pending       bool
	first, last   int64
	epoch         int32
	lastKafkaTime int64
	maxKafkaTime  int64 // of the pending range
	next          int64 // one past the last record processed; -1 unknown
	ck            *delivery.Checkpoint
	dlq           *deadLetters // nil without a dead-letter topic
	idleChecked   time.Time
	lastRecordAt  time.Time // wall clock of the last record processed (or the start)
	records       int64     // records in the pending range
	pendingSince  time.Time
	buffered      int64 // this worker's share of Runner.buffered (memory)

	pendingSinceNano atomic.Int64 // pendingSince for OldestPending; 0 when idle
}

func newWorker(r *Runner, topic string, partition int32, stages []pipeline.Stage, ps pipeline.PartitionSink) *worker {
	ctx, cancel := context.WithCancel(context.Background())
	return &worker{
		r:         r,
		topic:     topic,
		partition: partition,
		stages:    stages,
		sink:      ps,
		init:      make(chan workerStart, 1),
		in:        make(chan []*kgo.Record, 1),
		ctx:       ctx,
		cancel:    cancel,
		done:      make(chan struct{}),
	}
}

// drain asks the worker to finish the records already handed to it, flush,
// commit and exit. The poll loop hands it nothing afterwards.
func (w *worker) drain() { w.drainOnce.Do(func() { close(w.in) }) }

func (w *worker) tickEvery() time.Duration {
	t := w.r.opts.RollMaxAge / 4
	if t > time.Second {
		t = time.Second
	}
	if t < 10*time.Millisecond {
		t = 10 * time.Millisecond
	}
	return t
}

func (w *worker) run() {
	defer close(w.done)
	defer w.cancel()
	defer func() { w.r.buffered.Add(-w.buffered) }()
	defer func() {
		for _, s := range w.stages {
			if c, ok := s.(pipeline.Closer); ok {
				c.Close()
			}
		}
	}()

	// Fetching starts only after the runner read the partition state, so
	// init comes before any record; a drain may come first.
	var start workerStart
	select {
	case start = <-w.init:
	default:
		select {
		case start = <-w.init:
		case <-w.ctx.Done():
			return
		case recs, ok := <-w.in:
			if !ok {
				return
			}
			w.r.fail(fmt.Errorf("partition %s/%d: %d records before its state was read", w.topic, w.partition, len(recs)))
			return
		}
	}
	w.ck, w.next, w.lastRecordAt = start.ck, start.start, time.Now()
	hooks := delivery.Hooks{HandedOff: w.handedOff}
	if w.r.opts.DeadLetterTopic != "" {
		w.dlq = &deadLetters{cl: w.r.opts.Producer, topic: w.r.opts.DeadLetterTopic}
		hooks.BeforeDone = w.dlq.wait
	}
	if w.r.opts.Notify != nil {
		hooks.AfterDone = w.notify
	}
	w.flusher = delivery.NewFlusher(start.ck, w.sink, committer{w}, hooks)
	w.replay = start.replay
	if w.replay != nil {
		w.r.stats.Replays.Add(1)
	}
	if err := w.renotify(); err != nil {
		return // stopped
	}
	if err := w.warm(start); err != nil {
		if w.ctx.Err() == nil {
			w.r.fail(fmt.Errorf("partition %s/%d: %w", w.topic, w.partition, err))
		}
		return
	}

	ticker := time.NewTicker(w.tickEvery())
	defer ticker.Stop()
	for {
		select {
		case recs, ok := <-w.in:
			if !ok {
				if w.replay != nil {
					// An unfinished re-run is not flushed as a shorter
					// range: the next owner re-runs it whole.
					w.sink.Discard()
					return
				}
				w.flush()
				return
			}
			if err := w.handle(recs); err != nil {
				w.sink.Discard()
				if !errors.Is(err, errStopped) {
					w.r.fail(fmt.Errorf("partition %s/%d: %w", w.topic, w.partition, err))
				}
				return
			}
		case <-ticker.C:
			if w.replay == nil && w.pending && time.Since(w.pendingSince) >= w.r.opts.RollMaxAge {
				if !w.flush() {
					w.sink.Discard()
					return
				}
			}
			w.sealIdle()
		case <-w.ctx.Done():
			w.sink.Discard()
			return
		}
	}
}

// handle processes recs in chunks that never take the pending range past
// RollMaxRows records (or past the end of a range being re-run), flushing
// whenever a limit is reached.
func (w *worker) handle(recs []*kgo.Record) error {
	for len(recs) > 0 {
		if w.replay != nil {
			if !w.pending && recs[0].Offset > w.replay.First {
				w.r.log.Error("records of a pending range are gone from Kafka (retention?); re-running what is left",
					"topic", w.topic, "partition", w.partition, "first", w.replay.First, "last", w.replay.Last,
					"first_available", recs[0].Offset)
			}
			n := 0
			for n < len(recs) && recs[n].Offset <= w.replay.Last {
				n++
			}
			if n > 0 {
				if err := w.process(recs[:n]); err != nil {
					return err
				}
				recs = recs[n:]
			}
			if w.last >= w.replay.Last || len(recs) > 0 {
				// Flush exactly the recorded range, whatever records of
				// it still exist.
				w.first, w.last = w.replay.First, w.replay.Last
				w.pending = true
				if !w.flush() {
					return errStopped
				}
				w.replay = nil
			}
			continue
		}
		n := int64(len(recs))
		if room := w.r.opts.RollMaxRows - w.records; n > room {
			n = room
		}
		if err := w.process(recs[:n]); err != nil {
			return err
		}
		recs = recs[n:]
		buf := w.account()
		if w.overMemory(buf.Memory) {
			// Out of memory first, out of the files second: a flush
			// for memory makes small files.
			if err := w.sink.Shrink(); err != nil {
				return fmt.Errorf("sink: %w", err)
			}
			buf = w.account()
		}
		if w.records >= w.r.opts.RollMaxRows || buf.Bytes >= w.r.opts.RollMaxBytes || w.overMemory(buf.Memory) {
			if !w.flush() {
				return errStopped
			}
		}
	}
	return nil
}

// maxBatch bounds the events the stages and the sink see at once: a
// batch keeps its capacity (about 700 bytes an event, and the events'
// text), and a whole poll (up to MaxPollRecords) per partition cost about
// 5 MiB per worker when each worker kept its own batch; 1,024 still held
// 49 MiB at 64 partitions.
const maxBatch = 256

// process runs recs through the stages into the sink, maxBatch at a time.
func (w *worker) process(recs []*kgo.Record) error {
	for len(recs) > 0 {
		n := min(len(recs), maxBatch)
		if err := w.processBatch(recs[:n]); err != nil {
			return err
		}
		// The sink copied what it keeps: the fetch buffers can go back
		// to the client's pool (recordPool).
		for _, rec := range recs[:n] {
			rec.Recycle()
		}
		recs = recs[n:]
	}
	return nil
}

func (w *worker) processBatch(recs []*kgo.Record) error {
	b, _ := w.r.batches.Get().(*pipeline.Batch)
	if b == nil {
		b = new(pipeline.Batch)
	}
	defer w.r.batches.Put(b)
	b.Reset()
	b.Topic, b.Partition, b.SealedBefore = w.topic, w.partition, 0
	if w.ck != nil {
		b.SealedBefore = w.ck.State().SealedBefore
	}
	for _, rec := range recs {
		b.Events = append(b.Events, pipeline.Event{
			Topic:     rec.Topic,
			Partition: rec.Partition,
			Offset:    rec.Offset,
			KafkaTime: rec.Timestamp.UnixMilli(),
			Raw:       rec.Value,
		})
	}
	// Counts after one stage are the counts before the next: one pass
	// over the batch per stage, and none without an Observer.
	obs := w.r.opts.Observer
	var kept, rejected, dropped int
	if obs != nil {
		kept, rejected, dropped = b.Counts()
	}
	for _, s := range w.stages {
		t0 := time.Now()
		if err := s.Process(w.ctx, b); err != nil {
			return fmt.Errorf("stage %s: %w", s.Name(), err)
		}
		if obs != nil {
			k1, r1, d1 := b.Counts()
			obs.StageDone(s.Name(), kept, r1-rejected, d1-dropped, time.Since(t0))
			kept, rejected, dropped = k1, r1, d1
		}
	}
	if err := w.sink.Write(b); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	if w.dlq != nil {
		// A record may hold many events (Snowplow): find each rejected
		// event's record by offset; both are in offset order.
		j := 0
		for i := range b.Events {
			e := &b.Events[i]
			if e.State != pipeline.Rejected {
				continue
			}
			for j < len(recs)-1 && recs[j].Offset < e.Offset {
				j++
			}
			w.dlq.add(recs[j], e)
			w.r.stats.DeadLetters.Add(1)
		}
	}
	if obs == nil {
		kept, rejected, dropped = b.Counts()
	}
	st := &w.r.stats
	st.RecordsIn.Add(int64(len(recs)))
	st.EventsKept.Add(int64(kept))
	st.EventsRejected.Add(int64(rejected))
	st.EventsDropped.Add(int64(dropped))

	if !w.pending {
		w.pending = true
		w.first = recs[0].Offset
		w.maxKafkaTime = recs[0].Timestamp.UnixMilli()
		w.pendingSince = time.Now()
		w.pendingSinceNano.Store(w.pendingSince.UnixNano())
	}
	for _, rec := range recs {
		w.maxKafkaTime = max(w.maxKafkaTime, rec.Timestamp.UnixMilli())
	}
	last := recs[len(recs)-1]
	w.last = last.Offset
	w.next = last.Offset + 1
	w.lastRecordAt = time.Now()
	w.epoch = last.LeaderEpoch
	w.lastKafkaTime = last.Timestamp.UnixMilli()
	w.records += int64(len(recs))
	b.Reset()
	return nil
}

// account publishes the sink's memory to the runner's total.
func (w *worker) account() pipeline.Buffered {
	b := w.sink.Pending()
	w.r.buffered.Add(b.Memory - w.buffered)
	w.buffered = b.Memory
	return b
}

// overMemory tells whether this partition should flush early because all
// partitions together hold more than MemoryLimit and this one holds at
// least its even share.
func (w *worker) overMemory(bytes int64) bool {
	total := w.r.buffered.Load()
	return total > w.r.opts.MemoryLimit && bytes*max(w.r.numWorkers(), 1) >= total
}

// committer commits the worker's partition through the runner's client.
type committer struct{ w *worker }

func (c committer) Commit(ctx context.Context, next int64) error {
	return c.w.r.commit(ctx, c.w.topic, c.w.partition, c.w.epoch, next)
}

// flush runs the delivery protocol over the pending range (delivery.Flusher:
// pending → upload → done → commit), retrying what the store or the sink
// may do better next time, with backoff; failures go to the store's outage
// log (WARN at most every 30 s, INFO on recovery) and each retry to DEBUG.
// It reports false if the worker stopped before the range was done.
func (w *worker) flush() bool {
	if !w.pending {
		return true
	}
	rng := delivery.Range{First: w.first, Last: w.last, LastKafkaTime: w.lastKafkaTime, MaxKafkaTime: w.maxKafkaTime}
	var res delivery.Result
	start := time.Now()
	failing := false
	defer func() {
		if failing {
			w.r.failing.Add(-1)
		}
	}()
	err := delivery.Retry(w.ctx, delivery.Backoff{Initial: w.r.opts.RetryBackoff, Max: w.r.opts.RetryBackoffMax},
		func(err error, wait time.Duration) {
			var re *delivery.RetryableError
			if errors.As(err, &re) && re.Step == "upload" {
				w.r.stats.FlushErrors.Add(1)
			} else {
				w.r.stats.StateErrors.Add(1)
			}
			if !failing {
				failing = true
				w.r.failing.Add(1)
			}
			w.r.storeDown.Fail(w.r.opts.StoreName, err)
			w.r.log.Debug("flush failed; retrying", "topic", w.topic, "partition", w.partition,
				"first", w.first, "last", w.last, "retry_in", wait, "err", err)
		},
		func() error {
			select {
			case w.r.flushSlots <- struct{}{}:
			case <-w.ctx.Done():
				return fmt.Errorf("%w: %w", delivery.ErrStopped, w.ctx.Err())
			}
			defer func() { <-w.r.flushSlots }()
			var err error
			res, err = w.flusher.Flush(w.ctx, rng)
			return err
		})
	switch {
	case err == nil:
	case errors.Is(err, delivery.ErrFenced):
		w.fenced(err)
		return false
	case errors.Is(err, delivery.ErrBroken):
		w.r.fail(fmt.Errorf("partition %s/%d: flush [%d, %d]: %w", w.topic, w.partition, w.first, w.last, err))
		return false
	default: // stopped
		return false
	}
	if failing {
		w.r.storeDown.OK(w.r.opts.StoreName)
	}
	w.r.log.Debug("flushed", "topic", w.topic, "partition", w.partition,
		"first", w.first, "last", w.last, "files", len(res.Files), "took", time.Since(start))
	st := &w.r.stats
	st.Flushes.Add(1)
	st.RecordsFlushed.Add(w.records)
	var rows, bytes int64
	for _, f := range res.Files {
		rows += f.Rows
		bytes += f.Bytes
	}
	st.FilesWritten.Add(int64(len(res.Files)))
	st.RowsWritten.Add(rows)
	st.BytesWritten.Add(bytes)
	if res.CommitErr != nil {
		// The files are durable (and with a StateStore, so is the range);
		// a later flush commits past them.
		st.CommitErrors.Add(1)
		w.r.log.Warn("offset commit failed", "topic", w.topic, "partition", w.partition, "err", res.CommitErr)
	}
	if obs := w.r.opts.Observer; obs != nil {
		obs.FlushDone(w.topic, w.partition, len(res.Files), rows, bytes, time.Since(start))
	}
	w.pending = false
	w.pendingSinceNano.Store(0)
	w.records = 0
	w.account()
	return true
}

// fenced gives this run of the partition up (without writing or
// committing) after another member moved its state: a zombie, a member
// whose session expired and that has not noticed yet, wrote it since this
// worker read it. Whichever of the two this member is, its buffered
// records are not to be written; the runner starts the partition again
// from the state if this member still holds it (restartFenced).
func (w *worker) fenced(err error) {
	w.r.stats.StateConflicts.Add(1)
	w.r.log.Error("partition state moved by another member; this run of the partition ends without writing or committing",
		"topic", w.topic, "partition", w.partition, "err", err)
	w.cancel()
	w.r.fence(w)
}
