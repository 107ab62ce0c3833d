package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// worker owns one assigned partition: it runs the stages over the records
// in offset order, buffers output in its PartitionSink, and flushes the
// pending offset range [first, last] when a roll limit is reached, on
// drain, and by age on a ticker.
type worker struct {
	r         *Runner
	topic     string
	partition int32
	stages    []Stage
	sink      PartitionSink

	in        chan []*kgo.Record
	drainOnce sync.Once
	ctx       context.Context // canceled when the partition is lost or the drain times out
	cancel    context.CancelFunc
	done      chan struct{}

	batch Batch

	pending      bool
	first, last  int64
	epoch        int32
	records      int64 // records in the pending range
	pendingSince time.Time
	buffered     int64 // this worker's share of Runner.buffered
}

func newWorker(r *Runner, topic string, partition int32, stages []Stage, ps PartitionSink) *worker {
	ctx, cancel := context.WithCancel(context.Background())
	return &worker{
		r:         r,
		topic:     topic,
		partition: partition,
		stages:    stages,
		sink:      ps,
		in:        make(chan []*kgo.Record, 4),
		ctx:       ctx,
		cancel:    cancel,
		done:      make(chan struct{}),
		batch:     Batch{Topic: topic, Partition: partition},
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
	ticker := time.NewTicker(w.tickEvery())
	defer ticker.Stop()
	for {
		select {
		case recs, ok := <-w.in:
			if !ok {
				w.flush()
				return
			}
			if err := w.handle(recs); err != nil {
				w.sink.Discard()
				w.r.fail(fmt.Errorf("partition %s/%d: %w", w.topic, w.partition, err))
				return
			}
		case <-ticker.C:
			if w.pending && time.Since(w.pendingSince) >= w.r.opts.RollMaxAge {
				if !w.flush() {
					w.sink.Discard()
					return
				}
			}
		case <-w.ctx.Done():
			w.sink.Discard()
			return
		}
	}
}

// handle processes recs in chunks that never take the pending range past
// RollMaxRows records, flushing whenever a roll limit is reached.
func (w *worker) handle(recs []*kgo.Record) error {
	for len(recs) > 0 {
		n := int64(len(recs))
		if room := w.r.opts.RollMaxRows - w.records; n > room {
			n = room
		}
		if err := w.process(recs[:n]); err != nil {
			return err
		}
		recs = recs[n:]
		bytes := w.account()
		if w.records >= w.r.opts.RollMaxRows || bytes >= w.r.opts.RollMaxBytes || w.overMemory(bytes) {
			if !w.flush() {
				return fmt.Errorf("flush interrupted: %w", context.Cause(w.ctx))
			}
		}
	}
	return nil
}

func (w *worker) process(recs []*kgo.Record) error {
	b := &w.batch
	b.Reset()
	for _, rec := range recs {
		b.Events = append(b.Events, Event{
			Topic:     rec.Topic,
			Partition: rec.Partition,
			Offset:    rec.Offset,
			KafkaTime: rec.Timestamp.UnixMilli(),
			Raw:       rec.Value,
		})
	}
	for _, s := range w.stages {
		if err := s.Process(w.ctx, b); err != nil {
			return fmt.Errorf("stage %s: %w", s.Name(), err)
		}
	}
	if err := w.sink.Write(b); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	kept, rejected, dropped := b.Counts()
	st := &w.r.stats
	st.RecordsIn.Add(int64(len(recs)))
	st.EventsKept.Add(int64(kept))
	st.EventsRejected.Add(int64(rejected))
	st.EventsDropped.Add(int64(dropped))

	if !w.pending {
		w.pending = true
		w.first = recs[0].Offset
		w.pendingSince = time.Now()
	}
	last := recs[len(recs)-1]
	w.last = last.Offset
	w.epoch = last.LeaderEpoch
	w.records += int64(len(recs))
	b.Reset()
	return nil
}

// account publishes the sink's pending bytes to the runner's total.
func (w *worker) account() int64 {
	_, bytes := w.sink.Pending()
	w.r.buffered.Add(bytes - w.buffered)
	w.buffered = bytes
	return bytes
}

// overMemory tells whether this partition should flush early because all
// partitions together hold more than MemoryLimit and this one holds at
// least its even share.
func (w *worker) overMemory(bytes int64) bool {
	total := w.r.buffered.Load()
	return total > w.r.opts.MemoryLimit && bytes*max(w.r.numWorkers(), 1) >= total
}

// flush makes the pending range durable, retrying with backoff until it
// succeeds or the worker is canceled, then commits the offset after it. It
// reports false if the worker was canceled before the range was durable.
func (w *worker) flush() bool {
	if !w.pending {
		return true
	}
	backoff := w.r.opts.RetryBackoff
	var res FlushResult
	failing := false
	defer func() {
		if failing {
			w.r.failing.Add(-1)
		}
	}()
	for {
		var err error
		start := time.Now()
		res, err = w.sink.Flush(w.ctx, w.first, w.last)
		if err == nil {
			w.r.log.Debug("flushed", "topic", w.topic, "partition", w.partition,
				"first", w.first, "last", w.last, "files", len(res.Files), "took", time.Since(start))
			break
		}
		if w.ctx.Err() != nil {
			return false
		}
		w.r.stats.FlushErrors.Add(1)
		if !failing {
			failing = true
			w.r.failing.Add(1)
		}
		w.r.log.Warn("flush failed; retrying", "topic", w.topic, "partition", w.partition,
			"first", w.first, "last", w.last, "retry_in", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-w.ctx.Done():
			return false
		}
		backoff = min(2*backoff, w.r.opts.RetryBackoffMax)
	}
	st := &w.r.stats
	st.Flushes.Add(1)
	st.RecordsFlushed.Add(w.records)
	for _, f := range res.Files {
		st.FilesWritten.Add(1)
		st.RowsWritten.Add(f.Rows)
		st.BytesWritten.Add(f.Bytes)
	}
	if err := w.r.commit(w.ctx, w.topic, w.partition, w.epoch, w.last+1); err != nil {
		// The files are durable; a later flush commits past them. A
		// restart before that re-reads the range (at least once).
		st.CommitErrors.Add(1)
		w.r.log.Warn("offset commit failed", "topic", w.topic, "partition", w.partition, "err", err)
	}
	w.pending = false
	w.records = 0
	w.account()
	return true
}
