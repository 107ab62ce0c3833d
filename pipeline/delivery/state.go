// Package delivery is sluice's exactly-once protocol into object storage,
// apart from any Kafka client: the durable state of each partition (which
// offsets are delivered, which range may be half uploaded), the contract of
// the store that keeps it (compare-and-swap), and the flush of one offset
// range: record it pending, upload its files, record it done, commit the
// Kafka offset after it (DESIGN.md, "Delivery").
package delivery

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/sluicedata/sluice/pipeline"
)

// Errors a StateStore returns.
var (
	// ErrStateNotFound: the partition has no state yet.
	ErrStateNotFound = errors.New("no partition state")
	// ErrStateConflict: the state is not at the version the writer read.
	// Another member owns the partition now; the writer is a zombie.
	ErrStateConflict = errors.New("partition state changed by another writer")
)

// StateStore keeps each partition's delivery state durably, with
// compare-and-swap writes (S3 conditional writes; a lock on a directory).
type StateStore interface {
	// Load returns the state at key and its version, or an error wrapping
	// ErrStateNotFound.
	Load(ctx context.Context, key string) (data []byte, version string, err error)
	// Save writes data at key if it is still at version ("" = only if
	// absent) and returns the new version, or an error wrapping
	// ErrStateConflict and writes nothing.
	Save(ctx context.Context, key string, data []byte, version string) (string, error)
}

// OffsetRange is the offsets [First, Last] of one flush of a partition.
type OffsetRange struct {
	First int64 `json:"first"`
	Last  int64 `json:"last"`
}

// PartitionState is the delivery state of one partition, stored at
// _sluice/state/<group>/<topic>/<partition>.json. It is the source of
// truth for where a partition resumes; Kafka offsets are advisory.
type PartitionState struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Next is the first offset not yet delivered: every record before it
	// is in exactly one output row.
	Next int64 `json:"next"`
	// Pending is a range whose files may be partly uploaded. It must be
	// re-run exactly, as this range, before anything else.
	Pending *OffsetRange `json:"pending,omitempty"`
	// LastKafkaTime is the Kafka timestamp (ms) of the last delivered
	// record, where a dedupe window rebuild starts looking back from.
	LastKafkaTime int64 `json:"last_kafka_time_ms"`
	// SealedBefore (ms, an hour boundary) is how far the partition is
	// complete: no record placed in an hour before it will ever be written
	// again. It moves when a done range's latest Kafka time (capped by the
	// wall clock) passes an hour's end, or when the owner finds the
	// partition idle (consumed to its end) with the wall clock past the
	// hour's end + sink.complete_after. Later records with earlier Kafka
	// times are placed in the hour starting here (pipeline.HourMs).
	SealedBefore int64 `json:"sealed_before_ms,omitempty"`
	// Hours is the ledger of the hours not yet known to be handed off
	// (their manifests written): per hour, what became of the partition's
	// records and which files hold them. Each done range adds to it.
	Hours   []HourLedger `json:"hours,omitempty"`
	Updated string       `json:"updated"`
	Writer  string       `json:"writer"`
}

// HourLedger is one partition's part of one hour.
type HourLedger struct {
	pipeline.HourCount
	// Ranges are the done ranges that placed records in the hour,
	// contiguous ones merged.
	Ranges []OffsetRange `json:"ranges,omitempty"`
	Files  []LedgerFile  `json:"files,omitempty"`
}

// LedgerFile is one file of the hour, written by the done range
// [First, Last].
type LedgerFile struct {
	Key          string `json:"key"`
	Output       string `json:"output"` // events | rejected
	Rows         int64  `json:"rows"`
	Bytes        int64  `json:"bytes"`
	First        int64  `json:"first_offset"`
	Last         int64  `json:"last_offset"`
	MinEventTime int64  `json:"min_event_time_ms,omitempty"`
	MaxEventTime int64  `json:"max_event_time_ms,omitempty"`
	Hour         int64  `json:"-"` // unix hour of its directory (the ledger entry's)
}

// HourStartMs is the start (ms) of the hour holding ms.
func HourStartMs(ms int64) int64 { return pipeline.HourMs(ms, 0) * 3_600_000 }

// addRange merges a done range's result (and its files, ledgerFiles)
// into the ledger and moves
// SealedBefore past the hours its latest Kafka time (capped at now) ended.
// Hours before pruneBefore (ms; their manifests exist) leave the ledger.
func (st *PartitionState) addRange(r Range, res pipeline.FlushResult, files []LedgerFile, now, pruneBefore int64) {
	for _, hc := range res.Hours {
		l := st.hour(hc.Hour)
		l.Records += hc.Records
		l.Events += hc.Events
		l.Rejected += hc.Rejected
		l.Duplicates += hc.Duplicates
		l.Filtered += hc.Filtered
		if n := len(l.Ranges); n > 0 && l.Ranges[n-1].Last+1 == r.First {
			l.Ranges = append(slices.Clip(l.Ranges[:n-1]), OffsetRange{First: l.Ranges[n-1].First, Last: r.Last})
		} else {
			l.Ranges = append(slices.Clip(l.Ranges), OffsetRange{First: r.First, Last: r.Last})
		}
	}
	for _, lf := range files {
		l := st.hour(lf.Hour)
		l.Files = append(l.Files, lf)
	}
	if t := min(r.MaxKafkaTime, now); t > 0 {
		st.SealedBefore = max(st.SealedBefore, HourStartMs(t))
	}
	st.prune(pruneBefore)
}

// prune drops the ledger's hours before ms.
func (st *PartitionState) prune(ms int64) {
	// A copy: st.Hours may share its array with the saved state.
	st.Hours = slices.DeleteFunc(slices.Clone(st.Hours), func(l HourLedger) bool { return (l.Hour+1)*3_600_000 <= ms })
	if len(st.Hours) == 0 {
		st.Hours = nil
	}
}

// hour returns the ledger entry of unix hour h, adding it in order.
func (st *PartitionState) hour(h int64) *HourLedger {
	i, found := slices.BinarySearchFunc(st.Hours, h, func(l HourLedger, h int64) int { return cmp.Compare(l.Hour, h) })
	if !found {
		st.Hours = slices.Insert(st.Hours, i, HourLedger{HourCount: pipeline.HourCount{Hour: h}})
	}
	return &st.Hours[i]
}

// Ledger returns the partition's entry for unix hour h (zero if it had no
// records there).
func (st *PartitionState) Ledger(h int64) HourLedger {
	for _, l := range st.Hours {
		if l.Hour == h {
			return l
		}
	}
	return HourLedger{HourCount: pipeline.HourCount{Hour: h}}
}

// LastFiles are the files of the last done range (what a new owner
// announces again: the previous owner may have stopped before it did).
func (st *PartitionState) LastFiles() []LedgerFile {
	var out []LedgerFile
	for _, l := range st.Hours {
		for _, f := range l.Files {
			if f.Last == st.Next-1 {
				f.Hour = l.Hour
				out = append(out, f)
			}
		}
	}
	return out
}

// StateKey is the object key of a partition's state.
func StateKey(group, topic string, partition int32) string {
	return fmt.Sprintf("_sluice/state/%s/%s/%d.json", group, topic, partition)
}

var writerID = func() string {
	h, _ := os.Hostname()
	return fmt.Sprintf("%s/%d", h, os.Getpid())
}()

// Checkpoint is one partition owner's handle on its state: the state as
// last read or written, and the version its next compare-and-swap expects.
type Checkpoint struct {
	store   StateStore
	key     string
	state   PartitionState
	version string // "" until the state exists
}

// Load reads the state of a partition. found reports whether there was
// one; without, the Checkpoint starts from an empty state (Next -1). An
// error of the store is returned wrapped as Retryable.
func Load(ctx context.Context, store StateStore, group, topic string, partition int32) (c *Checkpoint, found bool, err error) {
	c = &Checkpoint{store: store, key: StateKey(group, topic, partition),
		state: PartitionState{Group: group, Topic: topic, Partition: partition, Next: -1}}
	data, version, err := store.Load(ctx, c.key)
	if errors.Is(err, ErrStateNotFound) {
		return c, false, nil
	}
	if err != nil {
		return nil, false, Retryable("state read", err)
	}
	if err := json.Unmarshal(data, &c.state); err != nil {
		return nil, false, fmt.Errorf("state %s is corrupt: %w", c.key, err)
	}
	if c.state.Topic != topic || c.state.Partition != partition {
		return nil, false, fmt.Errorf("state %s names %s/%d", c.key, c.state.Topic, c.state.Partition)
	}
	c.version = version
	return c, true, nil
}

// State is the partition state as last read or written.
func (c *Checkpoint) State() PartitionState { return c.state }

// SealIdle records that the partition is idle and delivered up to next
// (consumed to its end, nothing buffered): its hours before sealedBefore
// (an hour boundary) are complete. A partition without a state gets one,
// Next = next. It does nothing when SealedBefore is there already.
func (c *Checkpoint) SealIdle(ctx context.Context, sealedBefore, next int64, pruneBefore int64) error {
	st := c.state
	if st.SealedBefore >= sealedBefore || st.Pending != nil {
		return nil
	}
	if st.Next < 0 {
		st.Next = next
	}
	st.SealedBefore = sealedBefore
	st.prune(pruneBefore)
	return c.Save(ctx, st)
}

// Save writes st with compare-and-swap; on success it becomes the state.
// A write that lost the race (another member owns the partition) wraps
// ErrFenced; other store errors are Retryable.
func (c *Checkpoint) Save(ctx context.Context, st PartitionState) error {
	st.Updated = time.Now().UTC().Format(time.RFC3339Nano)
	st.Writer = writerID
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	v, err := c.store.Save(ctx, c.key, data, c.version)
	if errors.Is(err, ErrStateConflict) {
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	if err != nil {
		return Retryable("state write", err)
	}
	c.state, c.version = st, v
	return nil
}
