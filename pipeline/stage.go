package pipeline

import (
	"context"
	"errors"
	"time"
)

// Stage is one step of the pipeline over a batch of typed events.
//
// Process looks only at events whose State is Keep. A bad record is data:
// the stage marks it with Event.Reject and goes on. An error return means
// the batch cannot proceed at all (for example a dependency is gone); the
// worker then stops without committing anything past the last flush.
//
// A Stage belongs to one partition worker and is never called concurrently;
// state shared between partitions must be safe for concurrent use.
type Stage interface {
	Name() string
	Process(ctx context.Context, b *Batch) error
}

// Closer is a Stage that holds something to give back when its partition
// is released (dedupe: the memory it reported). The worker calls Close
// once, after the stage's last Process.
type Closer interface {
	Stage
	Close()
}

// Warmer is a Stage whose decisions depend on records before the ones it
// is given (dedupe). Before a worker processes the first record of an
// assignment, the runner reads the partition's records from Lookback (in
// Kafka time) before the start offset, at most Limit of them, runs them
// through the stages that come before the Warmer, and hands them to Warm.
// So a re-run range makes the same decisions its first run made.
type Warmer interface {
	Stage
	Lookback() time.Duration
	Limit() int
	Warm(b *Batch)
}

// StageFactory builds the stage chain for one assigned partition. It is
// called once per assignment, so per-partition state (a dedupe window, a
// cache) starts fresh with every assignment.
type StageFactory func(topic string, partition int32) ([]Stage, error)

// Sink opens the output of one assigned partition.
type Sink interface {
	OpenPartition(topic string, partition int32) (PartitionSink, error)
}

// PartitionSink buffers the output of one partition between flushes. It is
// owned by the partition worker and never used concurrently.
type PartitionSink interface {
	// Write appends the kept events of b to the events file of their Kafka
	// hour and the rejected ones to the rejected file of their hour; dropped
	// events are skipped. Everything Write needs is copied: b may be reused
	// once Write returns. An error means the sink cannot buffer any more.
	Write(b *Batch) error

	// Pending reports what is buffered since the last successful flush.
	Pending() Buffered

	// Shrink moves what it can of the buffered output out of memory
	// without ending any file (open row groups of files built on disk are
	// written out). The worker calls it before flushing early for memory.
	Shrink() error

	// Flush closes every file written since the last flush and makes each
	// durable in the store under a name derived from the offset range
	// [first, last], so that flushing the same records as the same range
	// always produces the same objects. On error nothing is lost: the
	// closed files are kept and Flush may be called again with the same
	// range, unless the error wraps ErrSinkBroken. On success the buffers
	// are empty.
	Flush(ctx context.Context, first, last int64) (FlushResult, error)

	// Discard drops everything buffered (the partition was lost).
	Discard()
}

// ErrSinkBroken, wrapped by a PartitionSink's error, means retrying cannot
// help (a file could not be finished): the process stops, and the range is
// re-run from the partition state.
var ErrSinkBroken = errors.New("sink cannot finish its files")

// Buffered is what a PartitionSink holds between flushes.
type Buffered struct {
	Rows   int64 // rows written
	Bytes  int64 // size of the files so far (what roll.max_bytes limits)
	Memory int64 // memory they hold (what memory_limit limits)
}

// FlushResult describes the objects one flush wrote and what became of
// the records of its range, per Kafka hour.
type FlushResult struct {
	Files []FileInfo
	// Hours counts the range's records by the hour they were placed in
	// (HourMs), in increasing hour order; every record of the range is in
	// exactly one count.
	Hours []HourCount
}

// FileInfo is one object written by a flush.
type FileInfo struct {
	Key      string
	Rows     int64
	Bytes    int64
	Rejected bool  // true for a file of the rejected output
	Hour     int64 // Unix hour of the file's date=/hour= directory
	// MinEventTime and MaxEventTime (ms) bound the event_time of the
	// rows of an events file; 0 for a rejected file.
	MinEventTime, MaxEventTime int64
}

// HourCount is what became of the records of one range placed in one
// hour: Records = Events + Rejected + Duplicates + Filtered.
type HourCount struct {
	Hour       int64 `json:"hour"` // Unix hour
	Records    int64 `json:"records"`
	Events     int64 `json:"events"`     // rows of the events output
	Rejected   int64 `json:"rejected"`   // rejected (rows of the rejected output unless it is off)
	Duplicates int64 `json:"duplicates"` // dropped by dedupe
	Filtered   int64 `json:"filtered"`   // dropped by any other stage (filter)
}
