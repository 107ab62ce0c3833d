package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/pipeline"
)

// warmTimeout bounds a window rebuild.
const warmTimeout = 2 * time.Minute

// warm rebuilds the state of Warmer stages from the records before the
// start offset. It needs the partition state (the Kafka time of the last
// delivered record); without it (a first start) there is nothing to
// rebuild.
func (w *worker) warm(start workerStart) error {
	idx := -1
	var warmer pipeline.Warmer
	for i, s := range w.stages {
		if wm, ok := s.(pipeline.Warmer); ok {
			idx, warmer = i, wm
			break
		}
	}
	if warmer == nil || start.ck == nil || start.start <= 0 || start.ck.State().LastKafkaTime <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(w.ctx, warmTimeout)
	defer cancel()
	began := time.Now()

	since := start.ck.State().LastKafkaTime - warmer.Lookback().Milliseconds()
	listed, err := kadm.NewClient(w.r.client).ListOffsetsAfterMilli(ctx, since, w.topic)
	if err != nil {
		return fmt.Errorf("window rebuild: list offsets: %w", err)
	}
	from := start.start
	if o, ok := listed.Lookup(w.topic, w.partition); ok && o.Err == nil && o.Offset >= 0 && o.Offset < from {
		from = o.Offset
	}
	if lim := int64(warmer.Limit()); from < start.start-lim {
		from = start.start - lim
	}
	if from >= start.start {
		return nil
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(w.r.opts.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{w.topic: {w.partition: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	}, w.r.opts.KafkaOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("window rebuild: %w", err)
	}
	defer cl.Close()

	b := &pipeline.Batch{Topic: w.topic, Partition: w.partition}
	n := 0
	next := from
	for next < start.start {
		fetches := cl.PollRecords(ctx, 10000)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("window rebuild of %s/%d from %d to %d stopped at %d: %w", w.topic, w.partition, from, start.start, next, err)
		}
		b.Reset()
		fetches.EachRecord(func(rec *kgo.Record) {
			if rec.Offset >= start.start {
				return
			}
			next = rec.Offset + 1
			b.Events = append(b.Events, pipeline.Event{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
				KafkaTime: rec.Timestamp.UnixMilli(), Raw: rec.Value})
		})
		if len(b.Events) == 0 {
			// Nothing more before the start (compacted or transaction
			// markers at the end): done.
			if fetches.NumRecords() > 0 {
				break
			}
			continue
		}
		for _, s := range w.stages[:idx] {
			if err := s.Process(ctx, b); err != nil {
				return fmt.Errorf("window rebuild: stage %s: %w", s.Name(), err)
			}
		}
		warmer.Warm(b)
		n += len(b.Events)
	}
	w.r.log.Info("dedupe window rebuilt", "topic", w.topic, "partition", w.partition,
		"from", from, "to", start.start-1, "records", n, "took", time.Since(began))
	return nil
}
