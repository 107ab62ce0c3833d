package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluicedata/sluice/config"
)

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	path := fs.String("config", "", "config file (YAML); SLUICE_* variables override keys")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Observability)
	setMemoryLimit(&cfg, log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return run(ctx, cfg, log)
}

// run is one `sluice run`: it starts every part — the embedded broker if
// configured, the stages and their GeoIP watcher, the runner, the HTTP
// server — in one lifecycle, runs the pipeline until ctx ends or it fails,
// then stops the goroutines, waits for them, and releases in reverse order.
// Its error is the run's, reported once by main.
func run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	lc := newLifecycle(ctx)
	defer lc.Close()

	brokers := cfg.Kafka.Brokers
	if len(brokers) == 1 && brokers[0] == "embedded" {
		c, err := startEmbeddedBroker(cfg.Kafka.Topics, 4)
		if err != nil {
			return err
		}
		lc.OnClose(c.Close)
		brokers = c.ListenAddrs()
		log.Info("embedded broker", "addrs", brokers, "topics", cfg.Kafka.Topics)
	}
	stages, err := buildStages(cfg, log, os.LookupEnv)
	if err != nil {
		return &exitError{2, err}
	}
	stages.start(lc)
	m := newMetrics()
	w, err := newRunner(cfg, brokers, stages.factory, m, log)
	if err != nil {
		return &exitError{2, err}
	}
	lc.OnClose(func() { w.close() })
	w.start(lc)
	r, store := w.runner, w.store
	m.watch(r, stages, int64(cfg.Sink.MemoryLimit))
	m.watchHandoff(w)
	if err := serveObservability(lc, cfg.Observability.Listen, cfg.Observability.Pprof, r, m, log); err != nil {
		return &exitError{2, err}
	}
	log.Info("sluice starting", "version", version, "sink", store.String())
	if err := r.Run(lc.ctx); err != nil {
		return err
	}
	s := r.Stats().Snapshot()
	log.Info("sluice stopped", "records", s.RecordsIn, "flushed", s.RecordsFlushed, "files", s.FilesWritten, "rejected", s.EventsRejected)
	return nil
}
