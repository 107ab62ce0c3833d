package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/internal/synth"
)

// genOptions is what `sluice gen` and `sluice demo` produce.
type genOptions struct {
	events  int
	rate    int // events per second; 0 = as fast as possible
	dupRate float64
	badRate float64
	seed    uint64
}

func (o genOptions) validate() error {
	var errs []error
	if o.events < 1 {
		errs = append(errs, fmt.Errorf("--events: must be at least 1, got %d", o.events))
	}
	if o.rate < 0 {
		errs = append(errs, fmt.Errorf("--rate: must not be negative, got %d", o.rate))
	}
	if o.dupRate < 0 || o.dupRate > 0.5 {
		errs = append(errs, fmt.Errorf("--dup-rate: must be in [0, 0.5], got %g", o.dupRate))
	}
	if o.badRate < 0 || o.badRate > 0.5 {
		errs = append(errs, fmt.Errorf("--bad-rate: must be in [0, 0.5], got %g", o.badRate))
	}
	return errors.Join(errs...)
}

// genCounts are running totals of a produce run.
type genCounts struct {
	produced, acked, failed, dups, bad atomic.Int64
}

// produce sends o.events synthetic records to topic with cl, paced at
// o.rate, keyed by event id (records without one spread round robin). It
// returns when every record is acknowledged or ctx ends.
func produce(ctx context.Context, cl *kgo.Client, topic string, o genOptions, c *genCounts) error {
	g := synth.New(synth.Options{Seed: o.seed, DupRate: o.dupRate, BadRate: o.badRate, Start: time.Now().UTC().Add(-time.Hour)})
	start := time.Now()
	var firstErr atomic.Value
	for i := 0; i < o.events; i++ {
		if ctx.Err() != nil {
			break
		}
		if o.rate > 0 {
			due := start.Add(time.Duration(float64(i) / float64(o.rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
		}
		val, kind := g.Append(nil)
		switch kind {
		case synth.Duplicate:
			c.dups.Add(1)
		case synth.Bad:
			c.bad.Add(1)
		}
		c.produced.Add(1)
		key := synth.EventID(val) // a re-send lands on the original's partition
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: key, Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				c.failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			c.acked.Add(1)
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if e, ok := firstErr.Load().(error); ok {
		return fmt.Errorf("%d record(s) not produced: %w", c.failed.Load(), e)
	}
	return ctx.Err()
}

func cmdGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "comma-separated seed brokers (host:port)")
	topic := fs.String("topic", "", "topic to produce to (must exist)")
	var o genOptions
	fs.IntVar(&o.events, "events", 100000, "number of records")
	fs.IntVar(&o.rate, "rate", 0, "records per second (0: as fast as possible)")
	fs.Float64Var(&o.dupRate, "dup-rate", 0.02, "share of exact duplicates of earlier events")
	fs.Float64Var(&o.badRate, "bad-rate", 0.005, "share of malformed records")
	fs.Uint64Var(&o.seed, "seed", uint64(time.Now().UnixNano()), "random seed (same seed, same records)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var errs []error
	if *brokers == "" {
		errs = append(errs, errors.New("--brokers is required"))
	}
	if *topic == "" {
		errs = append(errs, errors.New("--topic is required"))
	}
	if err := errors.Join(append(errs, o.validate())...); err != nil {
		return &exitError{2, err}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	var c genCounts
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- produce(ctx, cl, *topic, o, &c) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			el := time.Since(start).Seconds()
			fmt.Fprintf(os.Stderr, "\rproduced %d records (%d duplicates, %d bad) in %.1fs, %.0f/s; %d failed\n",
				c.acked.Load(), c.dups.Load(), c.bad.Load(), el, float64(c.acked.Load())/el, c.failed.Load())
			return err
		case <-tick.C:
			el := time.Since(start).Seconds()
			fmt.Fprintf(os.Stderr, "\rproduced %d/%d  %.0f/s  failed %d ", c.acked.Load(), o.events, float64(c.acked.Load())/el, c.failed.Load())
		}
	}
}
