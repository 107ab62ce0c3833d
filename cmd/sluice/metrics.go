package main

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluicedata/sluice/pipeline/kafka"
)

// metrics is sluice's Prometheus registry: the runner's totals and gauges
// read at scrape time, per-stage and per-flush measurements from the
// pipeline Observer, the stages' own counters, and the Kafka client's
// metrics (kprom, registered by the caller).
type metrics struct {
	reg *prometheus.Registry

	stageEvents   *prometheus.CounterVec
	stageRejected *prometheus.CounterVec
	stageDropped  *prometheus.CounterVec
	stageSeconds  *prometheus.HistogramVec
	flushSeconds  prometheus.Histogram
	flushFiles    prometheus.Counter
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &metrics{
		reg: reg,
		stageEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_stage_events_total",
			Help: "Events a stage processed."}, []string{"stage"}),
		stageRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_stage_rejected_total",
			Help: "Events a stage rejected (to the rejected output)."}, []string{"stage"}),
		stageDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_stage_dropped_total",
			Help: "Events a stage dropped (duplicates)."}, []string{"stage"}),
		stageSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_stage_batch_seconds",
			Help: "Time a stage took over one batch.", Buckets: prometheus.ExponentialBuckets(1e-5, 4, 10)}, []string{"stage"}),
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_flush_seconds",
			Help: "Time to make a flush durable: uploads and state writes.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10)}),
		flushFiles: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_flush_files_total", Help: "Files made durable by flushes."}),
	}
	reg.MustRegister(m.stageEvents, m.stageRejected, m.stageDropped, m.stageSeconds, m.flushSeconds, m.flushFiles)
	return m
}

// StageDone implements pipeline.Observer.
func (m *metrics) StageDone(stage string, in, rejected, dropped int, took time.Duration) {
	m.stageEvents.WithLabelValues(stage).Add(float64(in))
	if rejected > 0 {
		m.stageRejected.WithLabelValues(stage).Add(float64(rejected))
	}
	if dropped > 0 {
		m.stageDropped.WithLabelValues(stage).Add(float64(dropped))
	}
	m.stageSeconds.WithLabelValues(stage).Observe(took.Seconds())
}

// FlushDone implements pipeline.Observer.
func (m *metrics) FlushDone(_ string, _ int32, files int, _, _ int64, took time.Duration) {
	m.flushSeconds.Observe(took.Seconds())
	m.flushFiles.Add(float64(files))
}

// watch registers the values read from the runner and the stages at
// scrape time.
func (m *metrics) watch(r *kafka.Runner, stages *stageSet, memoryLimit int64) {
	counter := func(name, help string, f func(s kafka.StatsSnapshot) int64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(f(r.Stats().Snapshot())) }))
	}
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	counter("sluice_records_in_total", "Kafka records processed.", func(s kafka.StatsSnapshot) int64 { return s.RecordsIn })
	counter("sluice_events_kept_total", "Events buffered for the events output.", func(s kafka.StatsSnapshot) int64 { return s.EventsKept })
	counter("sluice_events_rejected_total", "Records rejected with a reason.", func(s kafka.StatsSnapshot) int64 { return s.EventsRejected })
	counter("sluice_events_dropped_total", "Events dropped by a stage.", func(s kafka.StatsSnapshot) int64 { return s.EventsDropped })
	counter("sluice_records_flushed_total", "Records whose flush completed.", func(s kafka.StatsSnapshot) int64 { return s.RecordsFlushed })
	counter("sluice_flushes_total", "Completed flushes.", func(s kafka.StatsSnapshot) int64 { return s.Flushes })
	counter("sluice_files_written_total", "Files written.", func(s kafka.StatsSnapshot) int64 { return s.FilesWritten })
	counter("sluice_rows_written_total", "Rows written.", func(s kafka.StatsSnapshot) int64 { return s.RowsWritten })
	counter("sluice_bytes_written_total", "Bytes written.", func(s kafka.StatsSnapshot) int64 { return s.BytesWritten })
	counter("sluice_flush_errors_total", "Failed flush attempts (retried).", func(s kafka.StatsSnapshot) int64 { return s.FlushErrors })
	counter("sluice_commit_errors_total", "Failed offset commits.", func(s kafka.StatsSnapshot) int64 { return s.CommitErrors })
	counter("sluice_fetch_errors_total", "Kafka fetch errors.", func(s kafka.StatsSnapshot) int64 { return s.FetchErrors })
	counter("sluice_state_errors_total", "Failed partition state reads and writes (retried).", func(s kafka.StatsSnapshot) int64 { return s.StateErrors })
	counter("sluice_state_conflicts_total", "Runs of a partition given up because another member moved its state.", func(s kafka.StatsSnapshot) int64 { return s.StateConflicts })
	counter("sluice_partition_restarts_total", "Partitions started again from their state after another member moved it, while this member still held them.", func(s kafka.StatsSnapshot) int64 { return s.Restarts })
	counter("sluice_replays_total", "Pending ranges re-run after a restart.", func(s kafka.StatsSnapshot) int64 { return s.Replays })
	gauge("sluice_buffered_bytes", "Memory of the output all partitions are building (open row groups, writer buffers, staged rows).", func() float64 { return float64(r.Buffered()) })
	gauge("sluice_memory_limit_bytes", "sink.memory_limit in effect (capped at a sixteenth of the container memory).", func() float64 { return float64(memoryLimit) })
	gauge("sluice_oldest_unflushed_seconds", "Age of the oldest record arrival not yet flushed (end-to-end watermark).",
		func() float64 { return r.OldestPending().Seconds() })
	gauge("sluice_ready", "1 when ready (group joined, every partition flushing).", func() float64 {
		if r.Ready() == nil {
			return 1
		}
		return 0
	})
	m.reg.MustRegister(lagCollector{r})

	if g := stages.geo; g != nil {
		st := g.Stats()
		m.counters([]statCounter{
			{"sluice_geo_lookups_total", "Events with a valid IP looked up.", &st.Lookups},
			{"sluice_geo_misses_total", "Valid IPs without a database record.", &st.Misses},
			{"sluice_geo_block_cache_hits_total", "Geo lookups answered by the anonymization-block cache (no search-tree walk).", &st.BlockHits},
			{"sluice_geo_invalid_ip_total", "Events whose ip is not an address.", &st.InvalidIPs},
			{"sluice_geo_reloads_total", "GeoIP database hot reloads.", &st.Reloads},
			{"sluice_geo_reload_errors_total", "Rejected GeoIP replacements (old database kept).", &st.ReloadErrors},
		})
		gauge("sluice_geo_database_build_timestamp_seconds", "Build time of the GeoIP database in use.", func() float64 { return float64(st.BuildEpoch.Load()) })
		gauge("sluice_geo_database_age_seconds", "Age of the GeoIP database in use, from its build time.",
			func() float64 { return time.Since(time.Unix(st.BuildEpoch.Load(), 0)).Seconds() })
	}
	if d := stages.decode; d != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sluice_decode_tombstones_total", Help: "Records with a null value (tombstones), rejected."}, func() float64 { return float64(d.Tombstones.Load()) }))
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sluice_decode_empty_values_total", Help: "Records with an empty value, rejected."}, func() float64 { return float64(d.EmptyValues.Load()) }))
	}
	if f := stages.filter; f != nil {
		for _, r := range []struct {
			rule string
			v    interface{ Load() int64 }
		}{{"event_name", &f.ByName}, {"bot", &f.Bots}, {"sampling", &f.Sampling}} {
			v := r.v
			m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sluice_filter_dropped_total",
				Help: "Events the filter stage dropped, by rule.", ConstLabels: prometheus.Labels{"rule": r.rule}},
				func() float64 { return float64(v.Load()) }))
		}
	}
	if c := stages.ua; c != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sluice_useragent_cache_hits_total", Help: "User-agent cache hits."}, func() float64 { return float64(c.Hits()) }))
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sluice_useragent_cache_misses_total", Help: "User-agent cache misses."}, func() float64 { return float64(c.Misses()) }))
	}
	if d := stages.dedupe; d != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sluice_dedupe_duplicates_total", Help: "Events dropped as duplicates within the window."}, func() float64 { return float64(d.Duplicates.Load()) }))
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sluice_dedupe_evicted_early_total", Help: "Window entries dropped early by max_entries."}, func() float64 { return float64(d.EvictedEarly.Load()) }))
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sluice_dedupe_warmed_total", Help: "Window entries rebuilt from earlier records on assignment."}, func() float64 { return float64(d.Warmed.Load()) }))
		gauge("sluice_dedupe_window_entries", "Entries in all dedupe windows.", func() float64 { return float64(d.Entries.Load()) })
		gauge("sluice_dedupe_window_bytes", "Memory held by all dedupe windows.", func() float64 { return float64(d.Bytes.Load()) })
	}
}

// lagCollector reports consumer lag per assigned partition.
type lagCollector struct{ r *kafka.Runner }

var lagDesc = prometheus.NewDesc("sluice_consumer_lag_records", "Records behind the partition's high watermark at the last fetch.", []string{"topic", "partition"}, nil)

func (c lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lagDesc }

func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	for topic, parts := range c.r.Lag() {
		for p, l := range parts {
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(l), topic, strconv.Itoa(int(p)))
		}
	}
}

// watchHandoff registers the hand-off metrics: hour completeness, the
// manifests, dead letters and notifications.
func (m *metrics) watchHandoff(w *wiring) {
	t, r := w.tracker, w.runner
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	gauge("sluice_hour_complete_end_seconds", "End (Unix seconds) of the newest hour every consumed partition has sealed (0 before the first).",
		func() float64 { return float64(t.NewestComplete()) / 1000 })
	gauge("sluice_hour_completeness_lag_seconds", "Wall clock minus the end of the newest complete hour (0 before the first).",
		func() float64 {
			if n := t.NewestComplete(); n > 0 {
				return time.Since(time.UnixMilli(n)).Seconds()
			}
			return 0
		})
	cs := []statCounter{
		{"sluice_manifests_written_total", "Hour manifests this process created.", &t.Written},
		{"sluice_manifests_existing_total", "Hour manifests found written already (by another replica, or before a restart).", &t.Conflicts},
		{"sluice_handoff_errors_total", "Failed hour-completeness rounds (retried).", &t.Errors},
		{"sluice_dead_letters_total", "Rejected records sent to the dead-letter topic (a re-run range sends again).", &r.Stats().DeadLetters},
	}
	if n := w.notify; n != nil {
		cs = append(cs, statCounter{"sluice_notifications_total", "Notifications acknowledged on sink.notify_topic (file and hour).",
			loadFunc(func() int64 { return n.files.Load() + n.hours.Load() })})
	}
	m.counters(cs)
}

// loadFunc is a running total computed at scrape time.
type loadFunc func() int64

func (f loadFunc) Load() int64 { return f() }

// statCounter is a Prometheus counter read from a running total.
type statCounter struct {
	name, help string
	v          interface{ Load() int64 }
}

// counters registers each total as a counter read at scrape time.
func (m *metrics) counters(cs []statCounter) {
	for _, c := range cs {
		v := c.v
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, func() float64 { return float64(v.Load()) }))
	}
}
