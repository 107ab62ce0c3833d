// Package collect is sluice's Snowplow-protocol HTTP collector: trackers
// send events to it as they would to Snowplow's collector (tp2 POSTs,
// GET pixels), and it writes each as a Thrift CollectorPayload record
// (package internal/snowplow) to a Kafka topic, the raw stream `decode`
// with format snowplow reads.
//
// A request is answered 200 only after Kafka acknowledged all its records,
// so a tracker's retry is the only way an event arrives twice (and dedupe
// drops it). A tp2 POST becomes one record per event, keyed by the event's
// eid, so a retried event lands on its first copy's partition. Memory is
// bounded: requests waiting for Kafka hold at most MaxBuffered bytes, and
// one that does not fit gets 503 with Retry-After, as does every request
// while Kafka is unreachable.
package collect

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/internal/snowplow"
)

// Paths of the Snowplow tracker protocol.
const (
	PathTP2   = "/com.snowplowanalytics.snowplow/tp2"
	PathPixel = "/i"
)

const payloadDataSchema = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-"

// Producer writes records and returns once Kafka acknowledged every one of
// them, or with the first failure. *kgo.Client satisfies it through
// KgoProducer.
type Producer interface {
	ProduceSync(ctx context.Context, recs ...*kgo.Record) kgo.ProduceResults
}

// Options configure a Collector.
type Options struct {
	Topic          string         // required
	MaxBody        int64          // bytes; default 1 MiB
	MaxBuffered    int64          // bytes; default 64 MiB
	TrustedProxies []netip.Prefix // X-Forwarded-For is read only from these
	CORSOrigins    []string       // "*" any; default none (no CORS headers)
	Cookie         Cookie
	// Name is the collector field of each payload. Default "sluice".
	Name string
	// ProduceTimeout bounds the wait for Kafka's acknowledgement; past it
	// the request gets 503. Default 10s.
	ProduceTimeout time.Duration
	Log            *slog.Logger
}

// Cookie is the network user id cookie.
type Cookie struct {
	Enabled bool
	Name    string
	Domain  string
	MaxAge  time.Duration
}

// Stats are the collector's counters, safe for concurrent use.
type Stats struct {
	Requests      atomic.Int64 // answered
	Events        atomic.Int64 // events acknowledged by Kafka
	TooLarge      atomic.Int64 // 413
	BadRequests   atomic.Int64 // 400
	Unavailable   atomic.Int64 // 503: buffer full or Kafka failing
	ProduceErrors atomic.Int64
	Buffered      atomic.Int64 // bytes waiting for Kafka now
}

// Collector is the HTTP handler.
type Collector struct {
	opts  Options
	prod  Producer
	log   *slog.Logger
	stats Stats

	mu       sync.Mutex
	failing  bool // the last produce failed
	failedAt time.Time
}

// New returns a Collector writing to prod.
func New(prod Producer, opts Options) (*Collector, error) {
	if opts.Topic == "" {
		return nil, errors.New("collect: a topic is required")
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 1 << 20
	}
	if opts.MaxBuffered <= 0 {
		opts.MaxBuffered = 64 << 20
	}
	if opts.Name == "" {
		opts.Name = "sluice"
	}
	if opts.ProduceTimeout <= 0 {
		opts.ProduceTimeout = 10 * time.Second
	}
	if opts.Cookie.Name == "" {
		opts.Cookie.Name = "sp"
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Collector{opts: opts, prod: prod, log: opts.Log}, nil
}

// Stats returns the collector's counters.
func (c *Collector) Stats() *Stats { return &c.stats }

// Ready is nil unless the last write to Kafka failed.
func (c *Collector) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failing {
		return fmt.Errorf("kafka writes failing since %s", c.failedAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// pixel is a 1×1 transparent GIF, the answer to GET /i.
var pixel = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff\x21\xf9\x04\x01\x00\x00\x00\x00\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3b")

// ServeHTTP implements http.Handler.
func (c *Collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.stats.Requests.Add(1)
	c.cors(w, r)
	switch {
	case r.URL.Path == "/health":
		io.WriteString(w, "ok\n")
	case r.Method == http.MethodOptions && (r.URL.Path == PathTP2 || r.URL.Path == PathPixel):
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodPost && r.URL.Path == PathTP2:
		c.post(w, r)
	case r.Method == http.MethodGet && (r.URL.Path == PathPixel || r.URL.Path == PathTP2):
		c.get(w, r)
	default:
		http.NotFound(w, r)
	}
}

// cors sets the CORS headers for an allowed Origin. Credentials are
// allowed (trackers send the cookie), so the origin is echoed, never "*".
func (c *Collector) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" || !(slices.Contains(c.opts.CORSOrigins, "*") || slices.Contains(c.opts.CORSOrigins, origin)) {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Set("Access-Control-Allow-Headers", "Content-Type, SP-Anonymous")
	h.Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
	h.Set("Access-Control-Max-Age", "3600")
	h.Add("Vary", "Origin")
}

func (c *Collector) post(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, c.opts.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			c.stats.TooLarge.Add(1)
			http.Error(w, fmt.Sprintf("body over %d bytes", c.opts.MaxBody), http.StatusRequestEntityTooLarge)
			return
		}
		c.stats.BadRequests.Add(1)
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	var pd struct {
		Schema string            `json:"schema"`
		Data   []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &pd); err != nil || !strings.HasPrefix(pd.Schema, payloadDataSchema) || len(pd.Data) == 0 {
		c.stats.BadRequests.Add(1)
		http.Error(w, "not a Snowplow payload_data body", http.StatusBadRequest)
		return
	}
	base := c.payload(w, r)
	recs := make([]*kgo.Record, 0, len(pd.Data))
	schema, _ := json.Marshal(pd.Schema)
	for _, ev := range pd.Data {
		var id struct {
			EID string `json:"eid"`
		}
		json.Unmarshal(ev, &id) // an event without eid is written all the same; decode rejects it
		p := base
		p.Body = `{"schema":` + string(schema) + `,"data":[` + string(ev) + `]}`
		p.Present |= snowplow.HasBody
		rec := &kgo.Record{Topic: c.opts.Topic, Value: p.Marshal(nil)}
		if id.EID != "" {
			rec.Key = []byte(id.EID)
		}
		recs = append(recs, rec)
	}
	if c.write(w, recs) {
		io.WriteString(w, "ok")
	}
}

func (c *Collector) get(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery == "" {
		c.stats.BadRequests.Add(1)
		http.Error(w, "no event parameters", http.StatusBadRequest)
		return
	}
	p := c.payload(w, r)
	p.Querystring = r.URL.RawQuery
	p.Present |= snowplow.HasQuerystring
	rec := &kgo.Record{Topic: c.opts.Topic, Value: p.Marshal(nil)}
	if eid := r.URL.Query().Get("eid"); eid != "" {
		rec.Key = []byte(eid)
	}
	if !c.write(w, []*kgo.Record{rec}) {
		return
	}
	if r.URL.Path == PathPixel {
		w.Header().Set("Content-Type", "image/gif")
		w.Write(pixel)
		return
	}
	io.WriteString(w, "ok")
}

// payload is the request's CollectorPayload without its events.
func (c *Collector) payload(w http.ResponseWriter, r *http.Request) snowplow.CollectorPayload {
	p := snowplow.CollectorPayload{
		Schema:      snowplow.Schema,
		IPAddress:   c.clientIP(r),
		Timestamp:   time.Now().UnixMilli(),
		Encoding:    "UTF-8",
		Collector:   c.opts.Name,
		UserAgent:   r.UserAgent(),
		RefererURI:  r.Referer(),
		Path:        r.URL.Path,
		ContentType: r.Header.Get("Content-Type"),
		Hostname:    r.Host,
		Present:     snowplow.HasPath | snowplow.HasHostname,
	}
	for name, vals := range r.Header {
		switch name {
		case "Cookie", "Authorization", "Proxy-Authorization":
			continue // credentials and the cookie: not into the raw stream
		}
		for _, v := range vals {
			p.Headers = append(p.Headers, name+": "+v)
		}
	}
	slices.Sort(p.Headers)
	if c.opts.Cookie.Enabled {
		p.NetworkUserID = c.networkUserID(w, r)
		p.Present |= snowplow.HasNetworkUserID
	}
	return p
}

// networkUserID reads the cookie or sets a new one.
func (c *Collector) networkUserID(w http.ResponseWriter, r *http.Request) string {
	id := ""
	if ck, err := r.Cookie(c.opts.Cookie.Name); err == nil && ck.Value != "" && len(ck.Value) <= 64 {
		id = ck.Value
	} else {
		id = newUUID()
	}
	http.SetCookie(w, &http.Cookie{
		Name: c.opts.Cookie.Name, Value: id, Domain: c.opts.Cookie.Domain, Path: "/",
		MaxAge: int(c.opts.Cookie.MaxAge.Seconds()), HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode,
	})
	return id
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// clientIP is the remote address, or from a trusted proxy the last
// X-Forwarded-For address that is not itself a trusted proxy.
func (c *Collector) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !c.trusted(addr.Unmap()) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: stop at the last address we trust
		}
		host = a.Unmap().String()
		if !c.trusted(a.Unmap()) {
			break
		}
	}
	return host
}

func (c *Collector) trusted(a netip.Addr) bool {
	for _, p := range c.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// write produces recs and waits for Kafka; it answers 503 itself and
// reports false when the request cannot be taken.
func (c *Collector) write(w http.ResponseWriter, recs []*kgo.Record) bool {
	var size int64
	for _, r := range recs {
		size += int64(len(r.Key) + len(r.Value) + 64)
	}
	if c.stats.Buffered.Add(size) > c.opts.MaxBuffered {
		c.stats.Buffered.Add(-size)
		c.unavailable(w, "buffer full")
		return false
	}
	defer c.stats.Buffered.Add(-size)
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.ProduceTimeout)
	defer cancel()
	if err := c.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		c.stats.ProduceErrors.Add(1)
		c.mu.Lock()
		if !c.failing {
			c.failing, c.failedAt = true, time.Now()
			c.log.Warn("kafka writes failing; answering 503", "topic", c.opts.Topic, "err", err)
		}
		c.mu.Unlock()
		c.unavailable(w, "kafka unavailable")
		return false
	}
	c.mu.Lock()
	if c.failing {
		c.failing = false
		c.log.Info("kafka writes recovered", "topic", c.opts.Topic)
	}
	c.mu.Unlock()
	c.stats.Events.Add(int64(len(recs)))
	return true
}

func (c *Collector) unavailable(w http.ResponseWriter, why string) {
	c.stats.Unavailable.Add(1)
	w.Header().Set("Retry-After", "1")
	http.Error(w, why, http.StatusServiceUnavailable)
}
