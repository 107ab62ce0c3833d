package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/config"
	"github.com/sluicedata/sluice/internal/arrowread"
	"github.com/sluicedata/sluice/internal/geodb"
	"github.com/sluicedata/sluice/stages/decode"
	"github.com/sluicedata/sluice/stages/dedupe"
	"github.com/sluicedata/sluice/stages/geo"
	"github.com/sluicedata/sluice/stages/pseudonymize"
	"github.com/sluicedata/sluice/stages/useragent"
)

// demoMaxAge is the demo's roll age: files appear within seconds.
const demoMaxAge = 2 * time.Second

func cmdDemo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var o genOptions
	fs.IntVar(&o.events, "events", 200000, "number of generated records")
	fs.IntVar(&o.rate, "rate", 0, "records per second (0: as fast as possible)")
	fs.Float64Var(&o.dupRate, "dup-rate", 0.02, "share of exact duplicates")
	fs.Float64Var(&o.badRate, "bad-rate", 0.005, "share of malformed records")
	fs.Uint64Var(&o.seed, "seed", 42, "random seed")
	out := fs.String("out", "sluice-demo", "output directory")
	partitions := fs.Int("partitions", 4, "partitions of the demo topic")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := o.validate(); err != nil {
		return &exitError{2, err}
	}
	if *partitions < 1 || *partitions > 1024 {
		return &exitError{2, fmt.Errorf("--partitions: must be in [1, 1024], got %d", *partitions)}
	}
	dir, err := prepareDemoDir(*out)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancelTimeout := context.WithTimeout(ctx, *timeout)
	defer cancelTimeout()

	const topic = "events"
	broker, err := startEmbeddedBroker([]string{topic}, int32(*partitions))
	if err != nil {
		return err
	}
	defer broker.Close()

	cfg := config.Default()
	cfg.Kafka.Brokers = broker.ListenAddrs()
	cfg.Kafka.Topics = []string{topic}
	cfg.Kafka.Group = "sluice-demo"
	cfg.Sink.URL = "file://" + dir
	cfg.Sink.Roll.MaxAge = config.Duration(demoMaxAge)
	cfg.Observability.Listen = ""
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Enrichment on demo terms: a synthetic GeoIP database (test places,
	// not real locations) and an ephemeral pseudonymization key.
	geoDir, err := os.MkdirTemp("", "sluice-demo-geo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(geoDir)
	geoPath := filepath.Join(geoDir, "GeoIP2-City-demo.mmdb")
	if err := geodb.Write(geoPath, geodb.Networks, time.Now().Unix()); err != nil {
		return err
	}
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return err
	}
	const keyVar = "SLUICE_DEMO_EPHEMERAL_KEY"
	cfg.Stages = nil
	for _, st := range []struct {
		typ string
		cfg any
	}{
		{"decode", decode.Config{}},
		{"geo", geo.Config{Database: geoPath}},
		{"useragent", useragent.Config{}},
		{"pseudonymize", pseudonymize.Config{KeyEnv: keyVar, KeyID: "demo-ephemeral"}},
		{"dedupe", dedupe.Config{Key: "event_id", Window: config.Duration(10 * time.Minute)}},
	} {
		entry, err := config.NewStage(st.typ, st.cfg)
		if err != nil {
			return err
		}
		cfg.Stages = append(cfg.Stages, entry)
	}
	if err := validateConfig(cfg); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	stages, err := buildStages(cfg, log, func(name string) (string, bool) {
		if name == keyVar {
			return hex.EncodeToString(key[:]), true
		}
		return "", false
	})
	if err != nil {
		return err
	}
	// Every goroutine below is joined, and the spool and the GeoIP
	// database released after them, whichever way the demo returns.
	lc := newLifecycle(ctx)
	defer lc.Close()
	stages.start(lc)
	w, err := newRunner(cfg, cfg.Kafka.Brokers, stages.factory, nil, log)
	if err != nil {
		return err
	}
	lc.OnClose(func() { w.close() })
	w.start(lc)
	runner := w.runner

	fmt.Printf("sluice demo: in-process Kafka broker at %s, topic %q with %d partitions\n", cfg.Kafka.Brokers[0], topic, *partitions)
	fmt.Printf("             %d generated events (%.1f%% duplicates, %.1f%% malformed) → %s\n", o.events, 100*o.dupRate, 100*o.badRate, dir)
	fmt.Printf("             stages: decode → geo → useragent → pseudonymize → dedupe\n")
	fmt.Printf("             geo uses a synthetic GeoIP database (test places, not real locations);\n")
	fmt.Printf("             user ids are pseudonymized with an ephemeral random key (demo only: sluice run requires a key)\n\n")

	runCtx, stopRunner := context.WithCancel(lc.ctx)
	defer stopRunner()
	runDone := make(chan error, 1)
	lc.Go(func() { runDone <- runner.Run(runCtx) })

	producer, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	lc.OnClose(producer.Close)
	var counts genCounts
	prodDone := make(chan error, 1)
	start := time.Now()
	lc.Go(func() { prodDone <- produce(lc.ctx, producer, topic, o, &counts) })

	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	produced := false
	// On a terminal the progress line redraws in place; elsewhere (CI,
	// a pipe) it prints a line every other second.
	tty := false
	if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		tty = true
	}
	ticks := 0
	progress := func() {
		s := runner.Stats().Snapshot()
		line := fmt.Sprintf("  produced %7d   processed %7d   written %7d rows in %4d files   rejected %5d   flushed %7d",
			counts.acked.Load(), s.RecordsIn, s.RowsWritten, s.FilesWritten, s.EventsRejected, s.RecordsFlushed)
		if tty {
			fmt.Print("\r" + line + " ")
		} else if ticks++; ticks%4 == 1 {
			fmt.Println(line)
		}
	}
loop:
	for {
		select {
		case err := <-prodDone:
			if err != nil {
				return fmt.Errorf("producing: %w", err)
			}
			produced = true
			prodDone = nil
		case err := <-runDone:
			ticks = 0
			progress()
			fmt.Println()
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("pipeline stopped early: %w", err)
		case <-tick.C:
			progress()
			if produced && runner.Stats().RecordsFlushed.Load() >= counts.acked.Load() {
				break loop
			}
		case <-ctx.Done():
			fmt.Println()
			return fmt.Errorf("demo: %w", context.Cause(ctx))
		}
	}
	elapsed := time.Since(start)
	stopRunner()
	if err := <-runDone; err != nil {
		return err
	}
	ticks = 0
	progress()
	if tty {
		fmt.Println()
	}
	snap := runner.Stats().Snapshot()
	return demoSummary(os.Stdout, dir, snap.RecordsIn, snap.EventsDropped, &counts, elapsed)
}

// prepareDemoDir makes the output directory, clearing what an earlier demo
// wrote; it refuses a directory that holds anything else.
func prepareDemoDir(out string) (string, error) {
	dir, err := filepath.Abs(out)
	if err != nil {
		return "", err
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	for _, e := range entries {
		switch e.Name() {
		case "events", "rejected", "_sluice", ".sluice-cas.lock":
		default:
			return "", &exitError{2, fmt.Errorf("%s holds %q, which the demo did not write; choose another --out", dir, e.Name())}
		}
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return "", err
		}
	}
	return dir, os.MkdirAll(dir, 0o755)
}

// demoSummary reads every output file back with Arrow and prints totals.
func demoSummary(w io.Writer, dir string, records, dropped int64, c *genCounts, elapsed time.Duration) error {
	count := func(sub string) (rows int64, files int, first string, err error) {
		err = filepath.WalkDir(filepath.Join(dir, sub), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".parquet") {
				return err
			}
			f, err := arrowread.Read(context.Background(), p, 0)
			if err != nil {
				return err
			}
			if first == "" {
				first = p
			}
			rows += f.NumRows
			files++
			return nil
		})
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
		return
	}
	evRows, evFiles, firstEv, err := count("events")
	if err != nil {
		return err
	}
	rjRows, rjFiles, _, err := count("rejected")
	if err != nil {
		return err
	}
	relative := func(p string) string {
		if wd, err := os.Getwd(); err == nil {
			if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
				return r
			}
		}
		return p
	}
	rel := relative(dir)
	fmt.Fprintf(w, "\nDone in %.1fs: %d records in, %.0f records/s end to end (including the final %s age flush).\n",
		elapsed.Seconds(), records, float64(records)/elapsed.Seconds(), demoMaxAge)
	fmt.Fprintf(w, "  events:   %8d rows in %d Parquet files (%d input duplicates dropped by dedupe; generated: %d)\n", evRows, evFiles, dropped, c.dups.Load())
	fmt.Fprintf(w, "  rejected: %8d rows in %d Parquet files (generated malformed: %d)\n", rjRows, rjFiles, c.bad.Load())
	status := "every record accounted for (rows + dropped duplicates = records produced)"
	if evRows+rjRows+dropped != c.acked.Load() {
		status = fmt.Sprintf("MISMATCH: %d produced, %d rows, %d dropped", c.acked.Load(), evRows+rjRows, dropped)
	}
	fmt.Fprintf(w, "  read back with Apache Arrow: %s\n\n", status)
	fmt.Fprintf(w, "Look at it:\n")
	if firstEv != "" {
		fmt.Fprintf(w, "  sluice inspect %s     (or: go run ./cmd/sluice inspect …)\n", relative(firstEv))
	}
	fmt.Fprintf(w, "  duckdb -c \"SELECT event_name, count(*) FROM read_parquet('%s/events/*/*/*.parquet', hive_partitioning=true) GROUP BY 1 ORDER BY 2 DESC\"\n", rel)
	fmt.Fprintf(w, "  duckdb -c \"SELECT geo_country, ua_device_class, count(DISTINCT user_pseudo_id) AS users FROM read_parquet('%s/events/*/*/*.parquet') GROUP BY ALL ORDER BY users DESC LIMIT 10\"\n", rel)
	fmt.Fprintf(w, "  duckdb -c \"SELECT stage, error, count(*) FROM read_parquet('%s/rejected/*/*/*.parquet') GROUP BY ALL\"\n", rel)
	if evRows+rjRows+dropped != c.acked.Load() {
		return errors.New("output does not match input")
	}
	return nil
}
