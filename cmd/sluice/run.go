package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"
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

	brokers := cfg.Kafka.Brokers
	if len(brokers) == 1 && brokers[0] == "embedded" {
		c, err := startEmbeddedBroker(cfg.Kafka.Topics, 4)
		if err != nil {
			return err
		}
		defer c.Close()
		brokers = c.ListenAddrs()
		log.Info("embedded broker", "addrs", brokers, "topics", cfg.Kafka.Topics)
	}
	stages, err := buildStages(cfg, log, os.LookupEnv)
	if err != nil {
		return &exitError{2, err}
	}
	defer stages.close()
	stages.watch(ctx)
	m := newMetrics()
	w, err := newRunner(cfg, brokers, stages.factory, m, log)
	if err != nil {
		return &exitError{2, err}
	}
	defer w.close()
	r, store := w.runner, w.store
	m.watch(r, stages, int64(cfg.Sink.MemoryLimit))
	if err := serveObservability(ctx, cfg.Observability.Listen, cfg.Observability.Pprof, r, m, log); err != nil {
		return &exitError{2, err}
	}
	log.Info("sluice starting", "version", version, "sink", store.String())
	if err := r.Run(ctx); err != nil {
		return err
	}
	s := r.Stats().Snapshot()
	log.Info("sluice stopped", "records", s.RecordsIn, "flushed", s.RecordsFlushed, "files", s.FilesWritten, "rejected", s.EventsRejected)
	return nil
}
