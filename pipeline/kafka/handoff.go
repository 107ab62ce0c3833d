package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/pipeline/delivery"
)

// The dead-letter headers (DESIGN.md, "Output"): a dead letter's value is
// the record's, unchanged; these carry why and where it came from. Its
// identity is (sluice-src-topic, sluice-src-partition, sluice-src-offset,
// sluice-src-index): a re-run range may send it again.
const (
	HeaderError     = "sluice-error"
	HeaderStage     = "sluice-stage"
	HeaderTopic     = "sluice-src-topic"
	HeaderPartition = "sluice-src-partition"
	HeaderOffset    = "sluice-src-offset"
	HeaderIndex     = "sluice-src-index" // the event's position in its record (src_index)
)

// deadLetters sends one partition's rejected records to the dead-letter
// topic as they are processed, and tells at the flush whether all of the
// range's are acknowledged (the range is recorded done only then). Owned
// by the worker; the produce callbacks are the client's goroutines.
type deadLetters struct {
	cl    *kgo.Client
	topic string

	wg     sync.WaitGroup
	mu     sync.Mutex
	failed []*kgo.Record
	err    error // the last produce error
	sent   int64 // acknowledged, for the stats
}

// add produces a dead letter for the rejected event e of record rec.
func (d *deadLetters) add(rec *kgo.Record, e *pipeline.Event) {
	out := &kgo.Record{
		Topic: d.topic,
		Key:   append([]byte(nil), rec.Key...),
		Value: append([]byte(nil), rec.Value...),
		Headers: []kgo.RecordHeader{
			{Key: HeaderError, Value: []byte(e.RejectReason)},
			{Key: HeaderStage, Value: []byte(e.RejectStage)},
			{Key: HeaderTopic, Value: []byte(rec.Topic)},
			{Key: HeaderPartition, Value: strconv.AppendInt(nil, int64(rec.Partition), 10)},
			{Key: HeaderOffset, Value: strconv.AppendInt(nil, rec.Offset, 10)},
			{Key: HeaderIndex, Value: strconv.AppendInt(nil, int64(e.Index), 10)},
		},
	}
	if rec.Value == nil {
		out.Value = nil // a tombstone stays one
	}
	d.produce(out)
}

func (d *deadLetters) produce(r *kgo.Record) {
	// franz-go measures the delivery timeout from the record's timestamp:
	// a record sent again needs a new one, or it times out at once.
	r.Timestamp = time.Now()
	d.wg.Add(1)
	// Not the worker's context: a send under way finishes (or fails and
	// is sent again at the flush) whatever the worker does meanwhile.
	d.cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
		defer d.wg.Done()
		d.mu.Lock()
		defer d.mu.Unlock()
		if err != nil {
			d.failed = append(d.failed, r)
			d.err = err
			return
		}
		d.sent++
	})
}

// wait returns nil when every dead letter produced so far is acknowledged;
// failed ones are sent again, and a Retryable error says they are not yet.
func (d *deadLetters) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	d.mu.Lock()
	failed, err := d.failed, d.err
	d.failed, d.err = nil, nil
	d.mu.Unlock()
	if len(failed) == 0 {
		return nil
	}
	for _, r := range failed {
		d.produce(r)
	}
	return delivery.Retryable("dead letters", fmt.Errorf("%d not acknowledged: %w", len(failed), err))
}

// idleCheckEvery bounds how often an idle partition asks the broker for
// its end offset.
const idleCheckEvery = 5 * time.Second

// sealIdle seals the hours of an idle partition that ended CompleteAfter
// ago, so that their manifests need not wait for a record that may never
// come. Idle: nothing pending, no record for CompleteAfter, and consumed to
// the partition's end offset. Such a partition's later records with
// earlier Kafka times go to the hour starting at the sealed time
// (pipeline.HourMs).
func (w *worker) sealIdle() {
	ck := w.ck
	after := w.r.opts.CompleteAfter
	if ck == nil || w.pending || w.replay != nil || after <= 0 {
		return
	}
	now := time.Now()
	target := delivery.HourStartMs(now.Add(-after).UnixMilli())
	every := min(idleCheckEvery, max(after/2, 100*time.Millisecond))
	if target <= ck.State().SealedBefore || now.Sub(w.lastRecordAt) < after || now.Sub(w.idleChecked) < every {
		return
	}
	w.idleChecked = now
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(w.r.client)
	ends, err := adm.ListEndOffsets(ctx, w.topic)
	if err != nil {
		w.r.log.Debug("idle check: end offsets", "topic", w.topic, "partition", w.partition, "err", err)
		return
	}
	end, ok := ends.Lookup(w.topic, w.partition)
	if !ok || end.Err != nil {
		return
	}
	next := w.next
	if next < 0 {
		// Nothing processed and no state: idle if the partition is empty.
		starts, err := adm.ListStartOffsets(ctx, w.topic)
		if err != nil {
			return
		}
		s, ok := starts.Lookup(w.topic, w.partition)
		if !ok || s.Err != nil || (s.Offset != end.Offset && w.r.opts.StartFrom != "latest") {
			return
		}
		next = end.Offset
	}
	if next < end.Offset {
		return // records to consume first
	}
	err = ck.SealIdle(w.ctx, target, next, w.handedOff())
	switch {
	case err == nil:
		w.r.log.Debug("idle partition sealed", "topic", w.topic, "partition", w.partition,
			"sealed_before", time.UnixMilli(target).UTC())
	case errors.Is(err, delivery.ErrFenced):
		w.fenced(err)
	default:
		w.r.stats.StateErrors.Add(1)
		w.r.log.Debug("idle seal failed; trying again", "topic", w.topic, "partition", w.partition, "err", err)
	}
}

func (w *worker) handedOff() int64 {
	if w.r.opts.HandedOff == nil {
		return 0
	}
	return w.r.opts.HandedOff()
}

// renotify announces the files of the last done range again: the previous
// owner may have stopped between its done state and its notifications.
func (w *worker) renotify() error {
	ck := w.ck
	if ck == nil || w.r.opts.Notify == nil {
		return nil
	}
	st := ck.State()
	files := st.LastFiles()
	if len(files) == 0 {
		return nil
	}
	failing := false
	defer func() {
		if failing {
			w.r.failing.Add(-1)
		}
	}()
	return delivery.Retry(w.ctx, delivery.Backoff{Initial: w.r.opts.RetryBackoff, Max: w.r.opts.RetryBackoffMax},
		func(err error, wait time.Duration) {
			if !failing { // /readyz says so while it lasts
				failing = true
				w.r.failing.Add(1)
			}
			w.r.log.Debug("notification failed; retrying", "topic", w.topic, "partition", w.partition, "err", err)
		},
		func() error { return w.notify(w.ctx, files) })
}

func (w *worker) notify(ctx context.Context, files []delivery.LedgerFile) error {
	if len(files) == 0 {
		return nil
	}
	if err := w.r.opts.Notify(ctx, w.topic, w.partition, files); err != nil {
		return delivery.Retryable("notify", err)
	}
	return nil
}
