package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/sluicedata/sluice/config"
	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/pipeline/delivery"
	"github.com/sluicedata/sluice/pipeline/handoff"
	"github.com/sluicedata/sluice/pipeline/kafka"
	"github.com/sluicedata/sluice/sinks/objstore"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
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

// wiring is a runner, the sink and store it writes to, and the hand-off:
// the tracker of complete hours and the side client it and the dead
// letters and notifications use.
type wiring struct {
	runner  *kafka.Runner
	sink    *pqsink.Sink
	store   objstore.Store
	side    *kgo.Client
	tracker *handoff.Tracker
	notify  *notifier // nil without sink.notify_topic
}

// start runs the tracker in a goroutine lc owns.
func (w *wiring) start(lc *lifecycle) {
	lc.Go(func() { w.tracker.Run(lc.ctx) })
}

// close releases the side client and the sink's spool; the runner and the
// tracker must be done.
func (w *wiring) close() error {
	w.side.Close()
	return w.sink.Close()
}

// spoolDir resolves sink.spool_dir: "" is the OS temp directory, "memory"
// none (files are built in memory).
func spoolDir(dir string) string {
	switch dir {
	case "":
		return os.TempDir()
	case "memory":
		return ""
	}
	return dir
}

// newRunner wires the configured source, stages and sink.
func newRunner(cfg config.Config, brokers []string, stages pipeline.StageFactory, m *metrics, log *slog.Logger) (*wiring, error) {
	kopts, err := kafkaSecurity(cfg.Kafka, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	var obs pipeline.Observer
	var groupOpts []kgo.Opt
	if m != nil {
		groupOpts = append(groupOpts, kgo.WithHooks(kprom.NewMetrics("sluice_kafka", kprom.Registerer(m.reg))))
		obs = m
	}
	store, err := objstore.Open(context.Background(), cfg.Sink.URL, objstore.S3Options{
		Endpoint:  cfg.Sink.S3.Endpoint,
		Region:    cfg.Sink.S3.Region,
		PathStyle: cfg.Sink.S3.PathStyle,
		PartSize:  int64(cfg.Sink.S3.PartSize),
	})
	if err != nil {
		return nil, err
	}
	if s3s, ok := store.(*objstore.S3); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err := s3s.Check(ctx)
		cancel()
		if err != nil {
			// Not fatal: an unreachable store is retried by every flush
			// and shown in /readyz; a wrong bucket shows the same way.
			log.Warn("object store not reachable yet", "sink", store.String(), "err", err)
		}
	}
	sink, err := pqsink.New(store, pqsink.Options{
		Compression:     cfg.Sink.Compression,
		ZstdLevel:       cfg.Sink.ZstdLevel,
		RowGroupBytes:   int64(cfg.Sink.RowGroupSize),
		DisableRejected: cfg.Sink.Rejected == "off",
		Version:         version,
		SpoolDir:        spoolDir(cfg.Sink.SpoolDir),
	})
	if err != nil {
		return nil, fmt.Errorf("sink.spool_dir %q: %w", cfg.Sink.SpoolDir, err)
	}
	side, err := newSideClient(cfg, brokers, kopts)
	if err != nil {
		sink.Close()
		return nil, err
	}
	state := objstore.StateStore{Store: store}
	w := &wiring{sink: sink, store: store, side: side}
	tcfg := handoff.Config{
		Store:      state,
		Group:      cfg.Kafka.Group,
		Partitions: topicPartitions(side, cfg.Kafka.Topics),
		Outputs:    manifestOutputs(cfg),
		Interval:   trackerInterval(cfg),
		Log:        log,
	}
	var notify func(ctx context.Context, topic string, partition int32, files []delivery.LedgerFile) error
	if cfg.Sink.NotifyTopic != "" {
		w.notify = &notifier{cl: side, topic: cfg.Sink.NotifyTopic}
		tcfg.Notify = w.notify.sendHour
		notify = w.notify.sendFiles
	}
	if w.tracker, err = handoff.New(tcfg); err != nil {
		w.close()
		return nil, err
	}
	r, err := kafka.NewRunner(kafka.Options{
		State:           state,
		CompleteAfter:   cfg.Sink.CompleteAfter.D(),
		HandedOff:       w.tracker.HandedOff,
		DeadLetterTopic: cfg.Kafka.DeadLetterTopic,
		Producer:        side,
		Notify:          notify,
		StoreName:       store.String(),
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
		KafkaOpts:       kopts,
		GroupClientOpts: groupOpts,
		Observer:        obs,
	}, stages, sink, log)
	if err != nil {
		w.close()
		return nil, err
	}
	if dir := sink.SpoolPath(); dir != "" {
		log.Info("spool", "dir", dir)
	}
	w.runner = r
	return w, nil
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

// serveObservability serves /livez, /readyz and /metrics on addr until
// lc's context ends, in goroutines lc owns. An address that cannot be
// bound is a startup error.
func serveObservability(lc *lifecycle, addr string, pprofOn bool, r interface{ Ready() error }, m *metrics, log *slog.Logger) error {
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
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	if pprofOn {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	lc.Go(func() {
		<-lc.ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	lc.Go(func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Error("observability server", "err", err)
		}
	})
	log.Info("observability", "listen", ln.Addr().String())
	return nil
}
