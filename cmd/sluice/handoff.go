package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/config"
	"github.com/sluicedata/sluice/pipeline/delivery"
	"github.com/sluicedata/sluice/pipeline/handoff"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
)

// newSideClient is the client for what sluice asks and sends besides
// consuming: topic metadata for hour completeness, dead letters and
// notifications. Produces are idempotent (franz-go's default) with acks
// from all in-sync replicas, and fail after 30 s so that a flush waiting
// for them is retried and visible.
func newSideClient(cfg config.Config, brokers []string, kopts []kgo.Opt) (*kgo.Client, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID(cfg.Kafka.ClientID),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(30 * time.Second),
		kgo.ProducerLinger(2 * time.Millisecond),
	}
	cl, err := kgo.NewClient(append(opts, kopts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// topicPartitions lists the partitions of topics from the brokers.
func topicPartitions(cl *kgo.Client, topics []string) func(ctx context.Context) (map[string][]int32, error) {
	return func(ctx context.Context) (map[string][]int32, error) {
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		tds, err := kadm.NewClient(cl).ListTopics(ctx, topics...)
		if err != nil {
			return nil, err
		}
		out := make(map[string][]int32, len(topics))
		for _, t := range topics {
			td, ok := tds[t]
			if !ok {
				return nil, fmt.Errorf("topic %s: not in the metadata", t)
			}
			if td.Err != nil {
				return nil, fmt.Errorf("topic %s: %w", t, td.Err)
			}
			out[t] = td.Partitions.Numbers()
		}
		return out, nil
	}
}

// notifier sends the notifications of sink.notify_topic, keyed by their
// stable id, and waits for Kafka's acknowledgement.
type notifier struct {
	cl    *kgo.Client
	topic string
	files atomic.Int64 // file notices acknowledged
	hours atomic.Int64 // hour notices acknowledged
}

func (n *notifier) sendFiles(ctx context.Context, topic string, partition int32, files []delivery.LedgerFile) error {
	recs := make([]*kgo.Record, 0, len(files))
	for _, f := range files {
		msg := handoff.NewFileNotice(topic, partition, f, pqsink.SchemaFingerprint(f.Output))
		recs = append(recs, &kgo.Record{Topic: n.topic, Key: []byte(msg.ID), Value: handoff.Encode(msg)})
	}
	if err := n.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("notify %s: %w", n.topic, err)
	}
	n.files.Add(int64(len(recs)))
	return nil
}

func (n *notifier) sendHour(ctx context.Context, m handoff.Manifest, key string) error {
	msg := handoff.NewHourNotice(m, key)
	if err := n.cl.ProduceSync(ctx, &kgo.Record{Topic: n.topic, Key: []byte(msg.ID), Value: handoff.Encode(msg)}).FirstErr(); err != nil {
		return fmt.Errorf("notify %s: %w", n.topic, err)
	}
	n.hours.Add(1)
	return nil
}

// trackerInterval is how often the hand-off tracker looks for complete
// hours: as often as files roll, between 1 s and 10 s.
func trackerInterval(cfg config.Config) time.Duration {
	return min(max(cfg.Sink.Roll.MaxAge.D(), time.Second), 10*time.Second)
}

// manifestOutputs are the outputs that get manifests.
func manifestOutputs(cfg config.Config) []handoff.Output {
	outs := []handoff.Output{{Name: "events", Fingerprint: pqsink.SchemaFingerprint("events")}}
	if cfg.Sink.Rejected == "store" {
		outs = append(outs, handoff.Output{Name: "rejected", Fingerprint: pqsink.SchemaFingerprint("rejected")})
	}
	return outs
}
