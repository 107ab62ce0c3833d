// Package synth generates realistic, deterministic product-analytics
// events for the demo, the load generator, the tests and the benchmarks:
// page views, UI and API events from browsers, apps, backends and bots,
// IPv4 and IPv6, with a share of input duplicates and bad records.
package synth

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// Kind says what a generated record is.
type Kind uint8

const (
	Valid     Kind = iota // a well-formed event
	Duplicate             // an exact re-send of an earlier valid event
	Bad                   // a record sluice must reject
)

// Options shape the stream. Zero values take the defaults.
type Options struct {
	Seed    uint64    // default 1
	DupRate float64   // share of duplicates, default 0 (set it)
	BadRate float64   // share of bad records, default 0 (set it)
	Start   time.Time // time of the first event, default 2026-01-01T00:00:00Z
	// Step is the mean time between events. Default 10ms.
	Step time.Duration
	// Users is the number of distinct users. Default 50,000.
	Users int
	// Reference draws user agents from ReferenceUserAgents (a few
	// hundred) and IPv4 addresses from ReferenceNetworks (4,096 /24s):
	// the throughput benchmark's workload.
	Reference bool
}

// Generator produces records. Not safe for concurrent use.
type Generator struct {
	opts   Options
	rng    *rand.Rand
	now    time.Time
	recent [][]byte // ring of recent valid events, for duplicates
	next   int
}

// New returns a generator.
func New(opts Options) *Generator {
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Start.IsZero() {
		opts.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if opts.Step == 0 {
		opts.Step = 10 * time.Millisecond
	}
	if opts.Users == 0 {
		opts.Users = 50_000
	}
	return &Generator{
		opts:   opts,
		rng:    rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		now:    opts.Start,
		recent: make([][]byte, 0, 512),
	}
}

// Append appends the next record value to dst.
func (g *Generator) Append(dst []byte) ([]byte, Kind) {
	if out, kind, ok := g.step(dst); ok {
		return out, kind
	}
	n := len(dst)
	dst = g.appendEvent(dst)
	g.remember(dst[n:])
	return dst, Valid
}

// step advances the clock and draws whether the next record is a bad one
// or a duplicate; if so it appends it (ok), else the caller appends an
// event.
func (g *Generator) step(dst []byte) (_ []byte, _ Kind, ok bool) {
	g.now = g.now.Add(time.Duration(g.rng.Int64N(int64(2*g.opts.Step) + 1)))
	r := g.rng.Float64()
	switch {
	case r < g.opts.BadRate:
		return g.appendBad(dst), Bad, true
	case r < g.opts.BadRate+g.opts.DupRate && len(g.recent) > 0:
		return append(dst, g.recent[g.rng.IntN(len(g.recent))]...), Duplicate, true
	}
	return dst, Valid, false
}

// remember keeps a copy of a valid event for later duplicates.
func (g *Generator) remember(v []byte) {
	ev := append([]byte(nil), v...)
	if len(g.recent) < cap(g.recent) {
		g.recent = append(g.recent, ev)
	} else {
		g.recent[g.next] = ev
		g.next = (g.next + 1) % len(g.recent)
	}
}

func (g *Generator) pick(list []string) string { return list[g.rng.IntN(len(list))] }

func (g *Generator) uuid(dst []byte) []byte {
	const hex = "0123456789abcdef"
	var b [16]byte
	for i := range 2 {
		v := g.rng.Uint64()
		for j := range 8 {
			b[i*8+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hex[c>>4], hex[c&0xf])
	}
	return dst
}

func (g *Generator) appendEvent(dst []byte) []byte {
	dev := &devices[g.rng.IntN(len(devices))]
	name := g.pick(dev.events)
	dst = append(dst, `{"event_id":"`...)
	dst = g.uuid(dst)
	dst = append(dst, `","event":"`...)
	dst = append(dst, name...)
	dst = append(dst, `","ts":`...)
	if g.rng.IntN(4) == 0 {
		dst = strconv.AppendInt(dst, g.now.UnixMilli(), 10)
	} else {
		dst = append(dst, '"')
		dst = g.now.AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
		dst = append(dst, '"')
	}
	user := g.rng.IntN(g.opts.Users)
	switch g.rng.IntN(10) {
	case 0: // anonymous
	case 1, 2:
		dst = append(dst, `,"user_id":`...)
		dst = strconv.AppendInt(dst, int64(1_000_000_000+user), 10)
	default:
		dst = append(dst, `,"user_id":"user-`...)
		dst = strconv.AppendInt(dst, int64(user), 10)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"session_id":"s-`...)
	dst = strconv.AppendInt(dst, int64(user), 36)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, g.now.Unix()/1800, 36)
	dst = append(dst, '"')
	if ip := g.ip(); ip != "" {
		dst = append(dst, `,"ip":"`...)
		dst = append(dst, ip...)
		dst = append(dst, '"')
	}
	if dev.ua != nil {
		dst = append(dst, `,"user_agent":"`...)
		if g.opts.Reference {
			dst = append(dst, g.pick(ReferenceUserAgents())...)
		} else {
			dst = append(dst, g.pick(dev.ua)...)
		}
		dst = append(dst, '"')
	}
	dst = append(dst, `,"app_id":"`...)
	dst = append(dst, dev.app...)
	dst = append(dst, `","platform":"`...)
	dst = append(dst, dev.platform...)
	dst = append(dst, '"')
	if dev.platform == "web" {
		dst = g.appendPage(dst, g.pick(pages))
	}
	dst = append(dst, `,"properties":`...)
	dst = g.properties(dst, name)
	if g.rng.IntN(5) == 0 { // unknown fields end up in extra
		dst = append(dst, `,"tracker":{"name":"sluice-js","version":"3.`...)
		dst = strconv.AppendInt(dst, int64(g.rng.IntN(9)), 10)
		dst = append(dst, `.0"},"schema_version":2`...)
	}
	return append(dst, '}')
}

// appendPage appends the page_url of page and a referrer.
func (g *Generator) appendPage(dst []byte, page string) []byte {
	dst = append(dst, `,"page_url":"https://shop.example.com`...)
	dst = append(dst, page...)
	dst = append(dst, `","referrer":"`...)
	dst = append(dst, g.pick(referrers)...)
	return append(dst, '"')
}

func (g *Generator) properties(dst []byte, name string) []byte {
	switch name {
	case "api_request":
		dst = append(dst, `{"method":"`...)
		dst = append(dst, g.pick([]string{"GET", "POST", "PUT", "DELETE"})...)
		dst = append(dst, `","route":"`...)
		dst = append(dst, g.pick([]string{"/v1/orders/{id}", "/v1/cart", "/v1/users/{id}/prefs", "/v1/search"})...)
		dst = append(dst, `","status":`...)
		dst = strconv.AppendInt(dst, int64(g.pick2([]int{200, 200, 200, 201, 204, 400, 404, 500})), 10)
		dst = append(dst, `,"latency_ms":`...)
		dst = strconv.AppendFloat(dst, float64(g.rng.IntN(90000))/100, 'f', 2, 64)
		return append(dst, `,"tags":["backend","v1"]}`...)
	case "add_to_cart", "purchase":
		dst = append(dst, `{"cart":{"items":[{"sku":"SKU-`...)
		dst = strconv.AppendInt(dst, int64(g.rng.IntN(5000)), 10)
		dst = append(dst, `","qty":`...)
		dst = strconv.AppendInt(dst, int64(1+g.rng.IntN(3)), 10)
		dst = append(dst, `,"price":`...)
		dst = strconv.AppendFloat(dst, float64(100+g.rng.IntN(20000))/100, 'f', 2, 64)
		dst = append(dst, `}],"currency":"`...)
		dst = append(dst, g.pick([]string{"EUR", "USD", "GBP"})...)
		return append(dst, `"},"coupon":null,"first_purchase":false}`...)
	default:
		dst = append(dst, `{"viewport":{"w":`...)
		dst = strconv.AppendInt(dst, int64(g.pick2([]int{390, 412, 768, 1280, 1440, 1920})), 10)
		dst = append(dst, `,"h":`...)
		dst = strconv.AppendInt(dst, int64(g.pick2([]int{844, 915, 1024, 720, 900, 1080})), 10)
		dst = append(dst, `},"element":"`...)
		dst = append(dst, g.pick([]string{"#buy-now", "nav > a.home", "button.add", "#search", "a.product-card"})...)
		dst = append(dst, `","experiment":{"id":"exp-42","variant":"`...)
		dst = append(dst, g.pick([]string{"control", "treatment"})...)
		return append(dst, `"},"title":"Caf\u00e9 \"Le Petit\" — spring sale"}`...)
	}
}

func (g *Generator) pick2(list []int) int { return list[g.rng.IntN(len(list))] }

func (g *Generator) ip() string {
	switch r := g.rng.IntN(100); {
	case r < 5:
		return ""
	case r < 6:
		return "not-an-ip"
	case r < 20:
		return fmt.Sprintf("2001:db8:%x:%x::%x", g.rng.IntN(64), g.rng.IntN(4096), 1+g.rng.IntN(65000))
	default:
		if g.opts.Reference {
			nets := ReferenceNetworks()
			return fmt.Sprintf("%s.%d", nets[g.rng.IntN(len(nets))], 1+g.rng.IntN(254))
		}
		nets := ipv4Nets
		n := nets[g.rng.IntN(len(nets))]
		return fmt.Sprintf("%s.%d.%d", n, g.rng.IntN(256), 1+g.rng.IntN(254))
	}
}

// appendBad appends one of the ways a record can be broken.
func (g *Generator) appendBad(dst []byte) []byte {
	switch g.rng.IntN(8) {
	case 0:
		return append(dst, `{"event_id":"truncated","event":"page_view","ts":"2026-01`...)
	case 1:
		return append(dst, `["an","array","not","an","object"]`...)
	case 2:
		dst = append(dst, `{"event":"click","ts":`...)
		return append(strconv.AppendInt(dst, g.now.UnixMilli(), 10), '}')
	case 3:
		dst = append(dst, `{"event_id":"`...)
		dst = g.uuid(dst)
		return append(dst, `","event":"click","ts":"yesterday"}`...)
	case 4:
		dst = append(dst, `{"event_id":"`...)
		dst = g.uuid(dst)
		return append(dst, `","event":"click","ts":1.5e12}`...)
	case 5:
		dst = append(dst, `{"event_id":"`...)
		dst = g.uuid(dst)
		return append(dst, `","event":"click","ts":"2026-01-01T00:00:00Z","user_id":{"nested":true}}`...)
	case 6:
		return append(dst, "plain text, not JSON at all"...)
	default:
		dst = append(dst, `{"event_id":`...)
		dst = strconv.AppendInt(dst, int64(g.rng.IntN(1000)), 10)
		return append(dst, `,"event":"click","ts":"2026-01-01T00:00:00Z"}`...)
	}
}

// EventID returns the event_id of a record this package generated, or nil
// (for bad records without one). Producers key records by it, as trackers
// do, so a re-send lands on the partition of the original.
func EventID(v []byte) []byte {
	const k = `"event_id":"`
	i := bytes.Index(v, []byte(k))
	if i < 0 {
		return nil
	}
	rest := v[i+len(k):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil
	}
	return rest[:j]
}
