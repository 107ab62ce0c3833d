package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicedata/sluice/config"
	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/sinks/objstore"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/stages/decode"
)

// newLogger builds the process logger from the observability config.
func newLogger(o config.Observability) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(o.LogLevel))
	hopts := &slog.HandlerOptions{Level: level}
	if o.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, hopts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, hopts))
}

// stageFactory builds the configured stage chain for each partition.
func stageFactory(cfg config.Config) (pipeline.StageFactory, error) {
	for i, st := range cfg.Stages {
		switch st.Type {
		case "decode":
		default:
			return nil, fmt.Errorf("stages[%d]: unknown stage type %q", i, st.Type)
		}
	}
	return func(topic string, partition int32) ([]pipeline.Stage, error) {
		out := make([]pipeline.Stage, 0, len(cfg.Stages))
		for _, st := range cfg.Stages {
			switch st.Type {
			case "decode":
				out = append(out, decode.New())
			}
		}
		return out, nil
	}, nil
}

// newRunner wires the configured source, stages and sink.
func newRunner(cfg config.Config, brokers []string, log *slog.Logger) (*pipeline.Runner, objstore.Store, error) {
	store, err := objstore.Open(cfg.Sink.URL)
	if err != nil {
		return nil, nil, err
	}
	sink, err := pqsink.New(store, pqsink.Options{
		Compression:     cfg.Sink.Compression,
		RowGroupBytes:   int64(cfg.Sink.RowGroupSize),
		DisableRejected: cfg.Sink.Rejected == "off",
		Version:         version,
	})
	if err != nil {
		return nil, nil, err
	}
	stages, err := stageFactory(cfg)
	if err != nil {
		return nil, nil, err
	}
	r, err := pipeline.NewRunner(pipeline.Options{
		Brokers:         brokers,
		Topics:          cfg.Kafka.Topics,
		Group:           cfg.Kafka.Group,
		StartFrom:       cfg.Kafka.StartFrom,
		SessionTimeout:  cfg.Kafka.SessionTimeout.D(),
		ClientID:        cfg.Kafka.ClientID,
		MaxPollRecords:  cfg.Kafka.MaxPollRecords,
		RollMaxRows:     cfg.Sink.Roll.MaxRows,
		RollMaxBytes:    int64(cfg.Sink.Roll.MaxBytes),
		RollMaxAge:      cfg.Sink.Roll.MaxAge.D(),
		MemoryLimit:     int64(cfg.Sink.MemoryLimit),
		ShutdownTimeout: cfg.ShutdownTimeout.D(),
	}, stages, sink, log)
	if err != nil {
		return nil, nil, err
	}
	return r, store, nil
}

// startEmbeddedBroker runs an in-process Kafka broker (kfake) on loopback
// with the topics created.
func startEmbeddedBroker(topics []string, partitions int32) (*kfake.Cluster, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	return c, nil
}

// serveObservability serves /livez, /readyz and /metrics on addr until ctx
// ends. An address that cannot be bound is a startup error.
func serveObservability(ctx context.Context, addr string, r *pipeline.Runner, log *slog.Logger) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("observability.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := r.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		writeMetrics(w, r)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Error("observability server", "err", err)
		}
	}()
	log.Info("observability", "listen", ln.Addr().String())
	return nil
}

func writeMetrics(w http.ResponseWriter, r *pipeline.Runner) {
	s := r.Stats().Snapshot()
	counter := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	counter("sluice_records_in_total", "Kafka records processed.", s.RecordsIn)
	counter("sluice_events_kept_total", "Events buffered for the events output.", s.EventsKept)
	counter("sluice_events_rejected_total", "Records rejected with a reason.", s.EventsRejected)
	counter("sluice_events_dropped_total", "Events dropped by a stage.", s.EventsDropped)
	counter("sluice_records_flushed_total", "Records whose flush completed.", s.RecordsFlushed)
	counter("sluice_flushes_total", "Completed flushes.", s.Flushes)
	counter("sluice_files_written_total", "Files written.", s.FilesWritten)
	counter("sluice_rows_written_total", "Rows written.", s.RowsWritten)
	counter("sluice_bytes_written_total", "Bytes written.", s.BytesWritten)
	counter("sluice_flush_errors_total", "Failed flush attempts (retried).", s.FlushErrors)
	counter("sluice_commit_errors_total", "Failed offset commits.", s.CommitErrors)
	counter("sluice_fetch_errors_total", "Kafka fetch errors.", s.FetchErrors)
	fmt.Fprintf(w, "# HELP sluice_buffered_bytes Bytes buffered by all partitions.\n# TYPE sluice_buffered_bytes gauge\nsluice_buffered_bytes %d\n", r.Buffered())
	ready := 0
	if r.Ready() == nil {
		ready = 1
	}
	fmt.Fprintf(w, "# HELP sluice_ready 1 when ready.\n# TYPE sluice_ready gauge\nsluice_ready %d\n", ready)
}
