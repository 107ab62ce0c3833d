// Package outage logs conditions that last — a Kafka broker or an object
// store that cannot be reached — so that an operator sees them without a
// log line per retry: WARN when one starts, again at most once per interval
// while it lasts, and INFO once when it ends. Safe for concurrent use.
package outage

import (
	"log/slog"
	"sync"
	"time"
)

// DefaultInterval is how often a lasting outage is logged again.
const DefaultInterval = 30 * time.Second

// Log tracks the outages of one kind of dependency ("kafka broker",
// "object store"), each by its address.
type Log struct {
	log      *slog.Logger
	what     string
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	down map[string]*state
}

type state struct {
	since, warned time.Time
	failures      int
}

// New returns a Log for what, logging to log every interval (DefaultInterval
// when <= 0).
func New(log *slog.Logger, what string, interval time.Duration) *Log {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Log{log: log, what: what, interval: interval, now: time.Now, down: map[string]*state{}}
}

// Fail records a failed attempt to reach addr. It logs at WARN when addr
// was not down, and when the last WARN for it is interval old.
func (l *Log) Fail(addr string, err error) {
	l.mu.Lock()
	now := l.now()
	s, ok := l.down[addr]
	if !ok {
		s = &state{since: now}
		l.down[addr] = s
	}
	s.failures++
	warn := !ok || now.Sub(s.warned) >= l.interval
	if warn {
		s.warned = now
	}
	failures, since := s.failures, s.since
	l.mu.Unlock()
	if warn {
		l.log.Warn(l.what+" unreachable; retrying", "addr", addr, "err", err,
			"failures", failures, "down_for", now.Sub(since).Round(time.Second))
	}
}

// OK records a successful attempt: if addr was down, it logs the recovery
// at INFO, once.
func (l *Log) OK(addr string) {
	l.mu.Lock()
	s, ok := l.down[addr]
	delete(l.down, addr)
	now := l.now()
	l.mu.Unlock()
	if ok {
		l.log.Info(l.what+" reachable again", "addr", addr, "failures", s.failures, "down_for", now.Sub(s.since).Round(time.Second))
	}
}

// Down tells whether addr is down.
func (l *Log) Down(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.down[addr]
	return ok
}
