package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicedata/sluice/config"
	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/sinks/objstore"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/stages/decode"
	"github.com/sluicedata/sluice/stages/dedupe"
	"github.com/sluicedata/sluice/stages/geo"
	"github.com/sluicedata/sluice/stages/pseudonymize"
	"github.com/sluicedata/sluice/stages/useragent"
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

// stageSet is the configured stage chain with the resources its stages
// share across partitions: the geo database (and its reload watcher) and
// the user-agent cache.
type stageSet struct {
	factory     pipeline.StageFactory
	geo         *geo.Database
	geoInterval time.Duration
	ua          *useragent.Cache
	dedupe      *dedupe.Stats
}

// buildStages opens everything the configured stages need. A missing or
// corrupt GeoIP database or a missing key is an error naming its stage.
// lookupEnv resolves key variables (os.LookupEnv outside tests and demo).
func buildStages(cfg config.Config, log *slog.Logger, lookupEnv func(string) (string, bool)) (*stageSet, error) {
	set := &stageSet{}
	var geoOpts geo.Options
	var pseudoOpts pseudonymize.Options
	var dedupeOpts dedupe.Options
	var errs []error
	for i, st := range cfg.Stages {
		key := fmt.Sprintf("stages[%d]", i)
		switch st.Type {
		case "decode":
		case "geo":
			db, err := geo.Open(st.Database, log)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.database: %w", key, err))
				continue
			}
			set.geo = db
			set.geoInterval = st.ReloadInterval.D()
			if set.geoInterval == 0 {
				set.geoInterval = time.Minute
			}
			geoOpts = geo.Options{IPv4Bits: bitsOpt(st.AnonymizeIPv4Bits), IPv6Bits: bitsOpt(st.AnonymizeIPv6Bits)}
		case "useragent":
			set.ua = useragent.NewCache(st.CacheSize)
		case "pseudonymize":
			sources, active := st.KeySources()
			specs := make([]pseudonymize.KeySpec, len(sources))
			for j, s := range sources {
				specs[j] = pseudonymize.KeySpec{ID: s.ID, Env: s.Env, File: s.File}
			}
			keys, err := pseudonymize.LoadKeys(specs, lookupEnv, nil)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
				continue
			}
			pseudoOpts = pseudonymize.Options{Keys: keys, Active: active, Fields: st.Fields, CacheSize: st.CacheSize}
			if _, err := pseudonymize.New(pseudoOpts); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
			}
		case "dedupe":
			dedupeOpts = dedupe.Options{Key: st.DedupeKey(), Window: st.Window.D(), MaxEntries: st.MaxEntries}
			if _, err := dedupe.New(dedupeOpts, nil); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
			}
			set.dedupe = &dedupe.Stats{}
		default:
			errs = append(errs, fmt.Errorf("%s.type: unknown stage type %q", key, st.Type))
		}
	}
	if err := errors.Join(errs...); err != nil {
		set.close()
		return nil, err
	}
	types := make([]string, len(cfg.Stages))
	for i, st := range cfg.Stages {
		types[i] = st.Type
	}
	set.factory = func(topic string, partition int32) ([]pipeline.Stage, error) {
		out := make([]pipeline.Stage, 0, len(types))
		for _, t := range types {
			var s pipeline.Stage
			var err error
			switch t {
			case "decode":
				s = decode.New()
			case "geo":
				s, err = geo.New(set.geo, geoOpts)
			case "useragent":
				s, err = useragent.New(set.ua)
			case "pseudonymize":
				s, err = pseudonymize.New(pseudoOpts)
			case "dedupe":
				s, err = dedupe.New(dedupeOpts, set.dedupe)
			}
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	return set, nil
}

// bitsOpt maps a configured bit count to geo.Options (nil: default; 0: -1).
func bitsOpt(v *int) int {
	switch {
	case v == nil:
		return 0
	case *v == 0:
		return -1
	}
	return *v
}

// watch runs the GeoIP reload watcher until ctx ends.
func (s *stageSet) watch(ctx context.Context) {
	if s.geo != nil {
		go s.geo.Watch(ctx, s.geoInterval)
	}
}

func (s *stageSet) close() {
	if s.geo != nil {
		s.geo.Close()
	}
}

// newRunner wires the configured source, stages and sink.
func newRunner(cfg config.Config, brokers []string, stages pipeline.StageFactory, log *slog.Logger) (*pipeline.Runner, objstore.Store, error) {
	kopts, err := kafkaSecurity(cfg.Kafka, os.LookupEnv)
	if err != nil {
		return nil, nil, err
	}
	store, err := objstore.Open(context.Background(), cfg.Sink.URL, objstore.S3Options{
		Endpoint:  cfg.Sink.S3.Endpoint,
		Region:    cfg.Sink.S3.Region,
		PathStyle: cfg.Sink.S3.PathStyle,
		PartSize:  int64(cfg.Sink.S3.PartSize),
	})
	if err != nil {
		return nil, nil, err
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
		RowGroupBytes:   int64(cfg.Sink.RowGroupSize),
		DisableRejected: cfg.Sink.Rejected == "off",
		Version:         version,
	})
	if err != nil {
		return nil, nil, err
	}
	r, err := pipeline.NewRunner(pipeline.Options{
		State:           stateStore{store},
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
	}, stages, sink, log)
	if err != nil {
		return nil, nil, err
	}
	return r, store, nil
}

// stateStore keeps partition state in the sink's object store, under
// _sluice/, with its compare-and-swap writes.
type stateStore struct{ s objstore.Store }

func (a stateStore) Load(ctx context.Context, key string) ([]byte, string, error) {
	b, v, err := a.s.GetVersion(ctx, key)
	if errors.Is(err, objstore.ErrNotExist) {
		return nil, "", fmt.Errorf("%w: %v", pipeline.ErrStateNotFound, err)
	}
	return b, v, err
}

func (a stateStore) Save(ctx context.Context, key string, data []byte, version string) (string, error) {
	v, err := a.s.PutIf(ctx, key, data, version)
	if errors.Is(err, objstore.ErrPrecondition) {
		return "", fmt.Errorf("%w: %v", pipeline.ErrStateConflict, err)
	}
	return v, err
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
func serveObservability(ctx context.Context, addr string, pprofOn bool, r *pipeline.Runner, stages *stageSet, log *slog.Logger) error {
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
		writeMetrics(w, r, stages)
	})
	if pprofOn {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
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

func writeMetrics(w http.ResponseWriter, r *pipeline.Runner, stages *stageSet) {
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
	counter("sluice_state_errors_total", "Failed partition state reads and writes (retried).", s.StateErrors)
	counter("sluice_state_conflicts_total", "Partitions given up because another member moved their state.", s.StateConflicts)
	counter("sluice_replays_total", "Pending ranges re-run after a restart.", s.Replays)
	if g := stages.geo; g != nil {
		st := g.Stats()
		counter("sluice_geo_lookups_total", "Events with a valid IP looked up.", st.Lookups.Load())
		counter("sluice_geo_misses_total", "Valid IPs without a database record.", st.Misses.Load())
		counter("sluice_geo_invalid_ip_total", "Events whose ip is not an address.", st.InvalidIPs.Load())
		counter("sluice_geo_reloads_total", "GeoIP database hot reloads.", st.Reloads.Load())
		counter("sluice_geo_reload_errors_total", "Rejected GeoIP replacements (old database kept).", st.ReloadErrors.Load())
		fmt.Fprintf(w, "# HELP sluice_geo_database_build_timestamp_seconds Build time of the GeoIP database in use.\n# TYPE sluice_geo_database_build_timestamp_seconds gauge\nsluice_geo_database_build_timestamp_seconds %d\n", st.BuildEpoch.Load())
	}
	if d := stages.dedupe; d != nil {
		counter("sluice_dedupe_duplicates_total", "Events dropped as duplicates within the window.", d.Duplicates.Load())
		counter("sluice_dedupe_evicted_early_total", "Window entries dropped early by max_entries.", d.EvictedEarly.Load())
		counter("sluice_dedupe_warmed_total", "Window entries rebuilt from earlier records on assignment.", d.Warmed.Load())
		fmt.Fprintf(w, "# HELP sluice_dedupe_window_entries Entries in all dedupe windows.\n# TYPE sluice_dedupe_window_entries gauge\nsluice_dedupe_window_entries %d\n", d.Entries.Load())
	}
	if c := stages.ua; c != nil {
		counter("sluice_useragent_cache_hits_total", "User-agent cache hits.", c.Hits.Load())
		counter("sluice_useragent_cache_misses_total", "User-agent cache misses.", c.Misses.Load())
	}
	fmt.Fprintf(w, "# HELP sluice_buffered_bytes Bytes buffered by all partitions.\n# TYPE sluice_buffered_bytes gauge\nsluice_buffered_bytes %d\n", r.Buffered())
	ready := 0
	if r.Ready() == nil {
		ready = 1
	}
	fmt.Fprintf(w, "# HELP sluice_ready 1 when ready.\n# TYPE sluice_ready gauge\nsluice_ready %d\n", ready)
}
