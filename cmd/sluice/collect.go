package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/collect"
	"github.com/sluicedata/sluice/config"
)

// cmdCollect runs the Snowplow-protocol collector until SIGTERM: it stops
// accepting, finishes the requests in flight, flushes the producer and
// exits 0.
func cmdCollect(args []string) error {
	fs := flag.NewFlagSet("collect", flag.ContinueOnError)
	path := fs.String("config", "", "config file (YAML); SLUICE_* variables override keys")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadChecked(*path, func(c config.Config) error { return c.ValidateCollect() })
	if err != nil {
		return err
	}
	log := newLogger(cfg.Observability)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return runCollect(ctx, cfg, log)
}

func runCollect(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	lc := newLifecycle(ctx)
	defer lc.Close()
	kopts, err := kafkaSecurity(cfg.Kafka, os.LookupEnv)
	if err != nil {
		return &exitError{2, err}
	}
	co := cfg.Collect
	const produceTimeout = 10 * time.Second
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Kafka.Brokers...),
		kgo.ClientID(cfg.Kafka.ClientID + "-collect"),
		kgo.RequiredAcks(kgo.AllISRAcks()), // and idempotent: franz-go's default
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(produceTimeout),
		kgo.MaxBufferedBytes(int(co.MaxBuffered) + int(co.MaxBody)),
	}, kopts...)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	var proxies []netip.Prefix
	for _, p := range co.TrustedProxies {
		proxies = append(proxies, netip.MustParsePrefix(p)) // validated
	}
	c, err := collect.New(cl, collect.Options{
		Topic: co.Topic, MaxBody: int64(co.MaxBody), MaxBuffered: int64(co.MaxBuffered),
		TrustedProxies: proxies, CORSOrigins: co.CORSOrigins,
		Cookie:         collect.Cookie{Enabled: co.Cookie.Enabled, Name: co.Cookie.Name, Domain: co.Cookie.Domain, MaxAge: co.Cookie.Expiration.D()},
		ProduceTimeout: produceTimeout, Log: log,
	})
	if err != nil {
		cl.Close()
		return err
	}
	m := newMetrics()
	m.watchCollector(c)
	if err := serveObservability(lc, cfg.Observability.Listen, cfg.Observability.Pprof, c, m, log); err != nil {
		cl.Close()
		return &exitError{2, err}
	}
	ln, err := net.Listen("tcp", co.Listen)
	if err != nil {
		cl.Close()
		return &exitError{2, fmt.Errorf("collect.listen: %w", err)}
	}
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("collecting", "listen", ln.Addr().String(), "topic", co.Topic, "version", version)

	var serveErr error
	select {
	case <-lc.ctx.Done():
	case serveErr = <-served:
	}
	// Stop accepting, finish what is in flight (each waits for Kafka),
	// then flush and close the producer.
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.D())
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight at the shutdown timeout", "err", err)
	}
	if err := cl.Flush(sctx); err != nil {
		log.Warn("producer flush", "err", err)
	}
	cl.Close()
	s := c.Stats()
	log.Info("collector stopped", "requests", s.Requests.Load(), "events", s.Events.Load(), "unavailable", s.Unavailable.Load())
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// watchCollector registers the collector's metrics.
func (m *metrics) watchCollector(c *collect.Collector) {
	s := c.Stats()
	m.counters([]statCounter{
		{"sluice_collect_requests_total", "HTTP requests answered.", &s.Requests},
		{"sluice_collect_events_total", "Events written to Kafka and acknowledged.", &s.Events},
		{"sluice_collect_too_large_total", "Requests refused with 413 (over collect.max_body).", &s.TooLarge},
		{"sluice_collect_bad_requests_total", "Requests refused with 400 (not a tracker payload).", &s.BadRequests},
		{"sluice_collect_unavailable_total", "Requests answered 503 (buffer full, or Kafka failing).", &s.Unavailable},
		{"sluice_collect_produce_errors_total", "Failed writes to Kafka.", &s.ProduceErrors},
	})
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_collect_buffered_bytes",
		Help: "Bytes of requests waiting for Kafka's acknowledgement (bounded by collect.max_buffered)."},
		func() float64 { return float64(s.Buffered.Load()) }))
}
