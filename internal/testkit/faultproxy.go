package testkit

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Faults say what a FaultProxy does to requests. Rates are in [0, 1].
type Faults struct {
	Error503   float64       // answer 503 SlowDown without forwarding
	Reset      float64       // close the connection without an answer
	Slow       float64       // delay the request by SlowBy first
	SlowBy     time.Duration // default 300ms
	Down       bool          // answer every request with 503 (store outage)
	BlockState bool          // answer 503 to writes of partition state (_sluice/state/…)
}

// FaultProxy is an HTTP proxy in front of an S3 server on loopback that
// injects faults, with a seeded random source so runs repeat.
type FaultProxy struct {
	URL      string
	mu       sync.Mutex
	faults   Faults
	rng      *rand.Rand
	Injected atomic.Int64
	Requests atomic.Int64
}

// StartFaultProxy proxies to target (an http://127.0.0.1 URL).
func StartFaultProxy(t testing.TB, target string, seed uint64) *FaultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil || !strings.HasPrefix(u.Host, "127.0.0.1:") {
		t.Fatalf("fault proxy target must be on loopback: %s", target)
	}
	p := &FaultProxy{rng: rand.New(rand.NewPCG(seed, seed+1))}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.Requests.Add(1)
		p.mu.Lock()
		f := p.faults
		x := p.rng.Float64()
		p.mu.Unlock()
		isStateWrite := r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/_sluice/state/")
		switch {
		case f.Down || (f.BlockState && isStateWrite):
			p.fail(w, r)
			return
		case x < f.Error503:
			p.fail(w, r)
			return
		case x < f.Error503+f.Reset:
			p.Injected.Add(1)
			io.Copy(io.Discard, r.Body)
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			p.fail(w, r)
			return
		case x < f.Error503+f.Reset+f.Slow:
			d := f.SlowBy
			if d == 0 {
				d = 300 * time.Millisecond
			}
			time.Sleep(d)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *FaultProxy) fail(w http.ResponseWriter, r *http.Request) {
	p.Injected.Add(1)
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected fault</Message></Error>`)
}

// Set replaces the faults.
func (p *FaultProxy) Set(f Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f
}
