// Package delivery is sluice's exactly-once protocol into object storage,
// apart from any Kafka client: the durable state of each partition (which
// offsets are delivered, which range may be half uploaded), the contract of
// the store that keeps it (compare-and-swap), and the flush of one offset
// range: record it pending, upload its files, record it done, commit the
// Kafka offset after it (DESIGN.md, "Delivery").
package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
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
	LastKafkaTime int64  `json:"last_kafka_time_ms"`
	Updated       string `json:"updated"`
	Writer        string `json:"writer"`
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
