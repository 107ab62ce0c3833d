// Package filter is the filter stage: it drops events by event name, by
// ua_is_bot, or by a sampling rate that is a pure function of the event id,
// so that a replayed range keeps exactly the events its first run kept.
// Dropped events are not written; their offsets still resolve with the
// flush that covers them, and they are counted.
package filter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"

	"github.com/zeebo/xxh3"

	"github.com/sluicedata/sluice/pipeline"
)

// StageName is the name of this stage.
const StageName = "filter"

// Config is the filter stage's keys in the stage list. An event is dropped
// when any rule says so.
type Config struct {
	// DropEvents are event names (the event_name column) to drop.
	// Default none.
	DropEvents []string `yaml:"drop_events,omitempty"`
	// DropBots drops events whose user agent is a bot (ua_is_bot true;
	// the useragent stage must run before). Default false.
	DropBots bool `yaml:"drop_bots,omitempty"`
	// SampleRate keeps this fraction of events, in (0, 1], chosen by a
	// hash of the event id: the same event is kept or dropped on every run
	// and every replica. Default 1 (keep all).
	SampleRate *float64 `yaml:"sample_rate,omitempty"`
}

// Validate reports every problem of c, each naming its key.
func (c Config) Validate() error {
	var errs []error
	for i, n := range c.DropEvents {
		if n == "" {
			errs = append(errs, fmt.Errorf("drop_events[%d]: must not be empty", i))
		}
	}
	if r := c.SampleRate; r != nil && (math.IsNaN(*r) || *r <= 0 || *r > 1) {
		errs = append(errs, fmt.Errorf("sample_rate: %v is not in (0, 1]", *r))
	}
	if len(c.DropEvents) == 0 && !c.DropBots && c.SampleRate == nil {
		errs = append(errs, errors.New("drop_events: the filter has no rule: set drop_events, drop_bots or sample_rate"))
	}
	return errors.Join(errs...)
}

// Stats count the events the filter stages of every partition dropped, by
// rule; safe for concurrent use.
type Stats struct {
	ByName   atomic.Int64
	Bots     atomic.Int64
	Sampling atomic.Int64
}

// Stage filters the events of one partition.
type Stage struct {
	drop      []string
	bots      bool
	keepBelow uint64 // an event is kept when the hash of its id is below (sampling)
	sample    bool
	stats     *Stats
}

// New returns a stage for c counting into stats (shared; nil: its own).
func New(c Config, stats *Stats) (*Stage, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	if stats == nil {
		stats = new(Stats)
	}
	s := &Stage{drop: slices.Clone(c.DropEvents), bots: c.DropBots, stats: stats}
	if r := c.SampleRate; r != nil && *r < 1 {
		s.sample = true
		s.keepBelow = uint64(*r * math.MaxUint64)
	}
	return s, nil
}

// Keep tells whether sampling at this stage's rate keeps the event with id.
func (s *Stage) Keep(id string) bool {
	return !s.sample || xxh3.HashString(id) < s.keepBelow
}

// Name implements pipeline.Stage.
func (s *Stage) Name() string { return StageName }

// Process implements pipeline.Stage: kept events it drops become Dropped.
func (s *Stage) Process(_ context.Context, b *pipeline.Batch) error {
	for i := range b.Events {
		e := &b.Events[i]
		if e.State != pipeline.Keep {
			continue
		}
		switch {
		case len(s.drop) > 0 && slices.Contains(s.drop, e.EventName):
			s.stats.ByName.Add(1)
		case s.bots && e.UA.Known && e.UA.IsBot:
			s.stats.Bots.Add(1)
		case !s.Keep(e.EventID):
			s.stats.Sampling.Add(1)
		default:
			continue
		}
		e.State, e.RejectStage = pipeline.Dropped, "filter"
	}
	return nil
}
