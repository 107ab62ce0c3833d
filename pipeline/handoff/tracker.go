package handoff

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sluicedata/sluice/pipeline/delivery"
)

// Output is one output of the sink that gets manifests.
type Output struct {
	Name        string // events | rejected
	Fingerprint string // its schema fingerprint
}

// Config configures a Tracker.
type Config struct {
	// Store holds the partition states, the manifests and the hand-off
	// marker (compare-and-swap writes). Required.
	Store delivery.StateStore
	// Group is the consumer group whose states are read. Required.
	Group string
	// Partitions returns the partitions of every consumed topic (from the
	// brokers' metadata: a partition with no state holds hours back).
	// Required.
	Partitions func(ctx context.Context) (map[string][]int32, error)
	// Outputs get a manifest each per complete hour. Required.
	Outputs []Output
	// Notify, when set, announces each manifest (at least once). An error
	// is retried at the next round.
	Notify func(ctx context.Context, m Manifest, key string) error
	// Interval between rounds. Default 10s.
	Interval time.Duration
	// Log, default none.
	Log *slog.Logger
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("handoff: a store is required"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("handoff: a group is required"))
	}
	if c.Partitions == nil {
		errs = append(errs, errors.New("handoff: a partition lister is required"))
	}
	if len(c.Outputs) == 0 {
		errs = append(errs, errors.New("handoff: at least one output is required"))
	}
	if c.Interval < 0 {
		errs = append(errs, errors.New("handoff: interval must not be negative"))
	}
	return errors.Join(errs...)
}

// MarkerKey is where a group's hand-off progress is kept: every hour that
// ends by its through_ms has its manifests written and announced.
func MarkerKey(group string) string { return "_sluice/handoff/" + group + ".json" }

type marker struct {
	Group     string `json:"group"`
	ThroughMs int64  `json:"through_ms"`
}

// Tracker writes the manifests of complete hours. Run it in every replica;
// they agree.
type Tracker struct {
	cfg Config
	log *slog.Logger

	through atomic.Int64 // marker's through_ms as last read or written
	newest  atomic.Int64 // end (ms) of the newest hour known complete

	Written   atomic.Int64 // manifests this tracker created
	Conflicts atomic.Int64 // manifests found written already (by another replica, or before a restart)
	Errors    atomic.Int64 // failed rounds
}

// New checks cfg and returns a Tracker.
func New(cfg Config) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Tracker{cfg: cfg, log: cfg.Log}, nil
}

// HandedOff is the time (ms) before which every hour is handed off (its
// manifests written and announced): the partition ledgers may drop those
// hours.
func (t *Tracker) HandedOff() int64 { return t.through.Load() }

// NewestComplete is the end (ms) of the newest hour known complete, 0 if
// none yet.
func (t *Tracker) NewestComplete() int64 { return t.newest.Load() }

// Run runs rounds until ctx ends; a failed round is logged and retried at
// the next.
func (t *Tracker) Run(ctx context.Context) {
	tick := time.NewTicker(t.cfg.Interval)
	defer tick.Stop()
	failing := false
	for {
		if _, err := t.Round(ctx); err != nil && ctx.Err() == nil {
			t.Errors.Add(1)
			if !failing {
				t.log.Warn("hour completeness: round failed; retrying", "err", err)
			}
			failing = true
		} else if failing && err == nil {
			t.log.Info("hour completeness: recovered")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Status is the completeness of the consumed partitions.
type Status struct {
	// SealedBefore (ms) is the least of the partitions' sealed times: every
	// hour ending by it is complete. 0 while a partition has no state.
	SealedBefore int64
	Partitions   []Partition
	Missing      []Partition // partitions of the topics without a state
	ThroughMs    int64       // the marker: hours ending by it are handed off
}

// Read loads every consumed partition's state and the marker.
func Read(ctx context.Context, store delivery.StateStore, group string, parts map[string][]int32) (Status, string, error) {
	var st Status
	least := int64(-1)
	topics := make([]string, 0, len(parts))
	for tp := range parts {
		topics = append(topics, tp)
	}
	slices.Sort(topics)
	for _, topic := range topics {
		ps := slices.Clone(parts[topic])
		slices.Sort(ps)
		for _, p := range ps {
			data, _, err := store.Load(ctx, delivery.StateKey(group, topic, p))
			if errors.Is(err, delivery.ErrStateNotFound) {
				st.Missing = append(st.Missing, Partition{Topic: topic, Partition: p})
				continue
			}
			if err != nil {
				return Status{}, "", fmt.Errorf("state %s/%d: %w", topic, p, err)
			}
			var ps delivery.PartitionState
			if err := json.Unmarshal(data, &ps); err != nil {
				return Status{}, "", fmt.Errorf("state %s/%d is corrupt: %w", topic, p, err)
			}
			st.Partitions = append(st.Partitions, Partition{Topic: topic, Partition: p, State: ps})
			if least < 0 || ps.SealedBefore < least {
				least = ps.SealedBefore
			}
		}
	}
	if len(st.Missing) == 0 && least > 0 {
		st.SealedBefore = least
	}
	// The marker after the states: a ledger is pruned only below a marker
	// value already written, so every hour past the marker read here is
	// whole in the states read before.
	data, version, err := store.Load(ctx, MarkerKey(group))
	switch {
	case errors.Is(err, delivery.ErrStateNotFound):
	case err != nil:
		return Status{}, "", fmt.Errorf("hand-off marker: %w", err)
	default:
		var m marker
		if err := json.Unmarshal(data, &m); err != nil {
			return Status{}, "", fmt.Errorf("hand-off marker %s is corrupt: %w", MarkerKey(group), err)
		}
		st.ThroughMs = m.ThroughMs
	}
	return st, version, nil
}

// Complete returns the unix hours that are complete and not yet handed
// off, oldest first: hours some partition has records in, ending by the
// sealed time and after the marker.
func (s Status) Complete() []int64 {
	seen := map[int64]bool{}
	var out []int64
	for _, p := range s.Partitions {
		for _, l := range p.State.Hours {
			end := (l.Hour + 1) * 3_600_000
			if end <= s.SealedBefore && end > s.ThroughMs && !seen[l.Hour] {
				seen[l.Hour] = true
				out = append(out, l.Hour)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Round writes and announces the manifests of every hour complete since
// the last round and moves the marker; it returns how many it created.
func (t *Tracker) Round(ctx context.Context) (int, error) {
	parts, err := t.cfg.Partitions(ctx)
	if err != nil {
		return 0, fmt.Errorf("partitions: %w", err)
	}
	st, version, err := Read(ctx, t.cfg.Store, t.cfg.Group, parts)
	if err != nil {
		return 0, err
	}
	t.through.Store(max(t.through.Load(), st.ThroughMs))
	if st.SealedBefore > 0 {
		t.newest.Store(max(t.newest.Load(), st.SealedBefore))
	}
	written := 0
	for _, h := range st.Complete() {
		for _, out := range t.cfg.Outputs {
			m := Build(t.cfg.Group, out.Name, out.Fingerprint, h, st.Partitions)
			created, err := t.write(ctx, m, h)
			if err != nil {
				return written, err
			}
			if created {
				written++
			}
			if t.cfg.Notify != nil {
				// At least once: also for a manifest found written, whose
				// writer may have stopped before announcing it.
				if err := t.cfg.Notify(ctx, m, ManifestKey(out.Name, h)); err != nil {
					return written, fmt.Errorf("announce %s: %w", ManifestKey(out.Name, h), err)
				}
			}
		}
	}
	if st.SealedBefore > st.ThroughMs {
		data, _ := json.Marshal(marker{Group: t.cfg.Group, ThroughMs: st.SealedBefore})
		if _, err := t.cfg.Store.Save(ctx, MarkerKey(t.cfg.Group), data, version); err != nil {
			if errors.Is(err, delivery.ErrStateConflict) {
				return written, nil // another replica moved it; read again next round
			}
			return written, fmt.Errorf("hand-off marker: %w", err)
		}
		t.through.Store(max(t.through.Load(), st.SealedBefore))
	}
	return written, nil
}

// write creates m's object unless it exists; an existing one must have the
// same bytes.
func (t *Tracker) write(ctx context.Context, m Manifest, h int64) (bool, error) {
	key := ManifestKey(m.Output, h)
	data := m.Encode()
	_, err := t.cfg.Store.Save(ctx, key, data, "")
	if err == nil {
		t.Written.Add(1)
		t.log.Info("hour complete", "manifest", key, "files", len(m.Files), "rows", m.Rows)
		return true, nil
	}
	if !errors.Is(err, delivery.ErrStateConflict) {
		return false, fmt.Errorf("manifest %s: %w", key, err)
	}
	t.Conflicts.Add(1)
	old, _, err := t.cfg.Store.Load(ctx, key)
	if err != nil {
		return false, fmt.Errorf("manifest %s: %w", key, err)
	}
	if !bytes.Equal(old, data) {
		// Cannot happen while the ledgers of sealed hours are frozen; the
		// written manifest stands (exactly once), the difference is shown.
		t.log.Error("manifest written already with other content; keeping it", "manifest", key)
	}
	return false, nil
}

// HourStatus is one recent hour as `sluice status` shows it.
type HourStatus struct {
	Hour     int64 // unix hour
	Complete bool
	// Behind are the partitions holding the hour back, with how far their
	// sealed time is before the hour's end.
	Behind []Behind
}

// Behind is a partition that has not sealed an hour.
type Behind struct {
	Topic     string
	Partition int32
	By        time.Duration // 0 with NoState
	NoState   bool
}

// Hours reports the hours from first to last (unix hours) as complete or
// not, and what holds each incomplete one back.
func (s Status) Hours(first, last int64) []HourStatus {
	var out []HourStatus
	for h := first; h <= last; h++ {
		end := (h + 1) * 3_600_000
		hs := HourStatus{Hour: h, Complete: s.SealedBefore >= end}
		if !hs.Complete {
			for _, p := range s.Missing {
				hs.Behind = append(hs.Behind, Behind{Topic: p.Topic, Partition: p.Partition, NoState: true})
			}
			for _, p := range s.Partitions {
				if p.State.SealedBefore < end {
					hs.Behind = append(hs.Behind, Behind{Topic: p.Topic, Partition: p.Partition,
						By: time.Duration(end-p.State.SealedBefore) * time.Millisecond})
				}
			}
			slices.SortFunc(hs.Behind, func(a, b Behind) int { return cmp.Compare(b.By, a.By) })
		}
		out = append(out, hs)
	}
	return out
}
