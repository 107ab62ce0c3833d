package kafka_test

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/internal/testkit"
	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/pipeline/delivery"
	"github.com/sluicedata/sluice/pipeline/kafka"
	"github.com/sluicedata/sluice/sinks/objstore"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/stages/decode"
)

// TestDeadLettersBeforeDone: with rejected output off and a dead-letter
// topic, bad records go only to the topic. While the topic cannot take
// them (it does not exist yet), no range holding a bad record is recorded
// done and the runner is not ready; once it exists, every bad record is
// there with its headers and nothing bad is in the store.
func TestDeadLettersBeforeDone(t *testing.T) {
	const topic, dlq = "events", "events-dlq"
	kc := testkit.Kafka(t, topic, 2)
	brokers := kc.ListenAddrs()
	dir, store := dirStore(t)
	producer, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordDeliveryTimeout(2*time.Second), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	sink, err := pqsink.New(store, pqsink.Options{DisableRejected: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err := kafka.NewRunner(kafka.Options{
		Brokers: brokers, Topics: []string{topic}, Group: "dl", RollMaxAge: 300 * time.Millisecond,
		RetryBackoff: 50 * time.Millisecond, RetryBackoffMax: 200 * time.Millisecond,
		State: objstore.StateStore{Store: store}, DeadLetterTopic: dlq, Producer: producer,
	}, func(string, int32) ([]pipeline.Stage, error) { return []pipeline.Stage{decode.New(nil)}, nil },
		sink, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		t.Fatal(err)
	}
	produce(t, brokers, topic, 3000, 9, 0)
	ends := testkit.EndOffsets(t, brokers, topic)
	m := start(r)

	// The dead letters cannot be delivered: the ranges stay pending.
	testkit.WaitFor(t, 30*time.Second, "a flush failing on its dead letters", func() bool { return r.Ready() != nil && r.Stats().DeadLetters.Load() > 0 })
	time.Sleep(2 * time.Second)
	for p := range ends {
		ck, found, err := delivery.Load(context.Background(), objstore.StateStore{Store: store}, "dl", topic, p)
		if err != nil {
			t.Fatal(err)
		}
		if found && ck.State().Pending == nil {
			t.Errorf("partition %d: a range was recorded done while its dead letters were not acknowledged: %+v", p, ck.State())
		}
	}

	adm := kadm.NewClient(producer)
	if resp, err := adm.CreateTopic(context.Background(), 1, 1, nil, dlq); err != nil || resp.Err != nil {
		t.Fatal(err, resp.Err)
	}
	testkit.WaitFor(t, 60*time.Second, "every record delivered", func() bool { return r.Stats().RecordsFlushed.Load() == 3000 })
	m.stop(t)

	// Every bad record once per source offset, with its headers.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(dlq), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want := int(r.Stats().EventsRejected.Load())
	seen := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(seen) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) {
			h := map[string]string{}
			for _, hd := range rec.Headers {
				h[hd.Key] = string(hd.Value)
			}
			if h[kafka.HeaderStage] != "decode" || h[kafka.HeaderError] == "" || h[kafka.HeaderTopic] != topic {
				t.Errorf("dead letter headers %v", h)
			}
			if _, err := strconv.Atoi(h[kafka.HeaderOffset]); err != nil {
				t.Errorf("offset header %q", h[kafka.HeaderOffset])
			}
			seen[h[kafka.HeaderPartition]+"/"+h[kafka.HeaderOffset]] = true
		})
	}
	if want == 0 || len(seen) != want {
		t.Errorf("%d distinct dead letters, %d records rejected", len(seen), want)
	}
	if keys, _ := store.List(context.Background(), "rejected/"); len(keys) != 0 {
		t.Errorf("rejected output is off, yet the store holds %v", keys)
	}
	out := testkit.ReadOutput(t, dir)
	if len(out.Events)+want != 3000 {
		t.Errorf("%d events + %d dead letters, produced 3000", len(out.Events), want)
	}
}
