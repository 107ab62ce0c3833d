package kafka

import "sync/atomic"

// Stats are the runner's running totals, safe for concurrent use.
type Stats struct {
	RecordsIn      atomic.Int64 // records taken from Kafka and processed
	EventsKept     atomic.Int64 // events buffered for the events output
	EventsRejected atomic.Int64 // records buffered for the rejected output
	EventsDropped  atomic.Int64 // events dropped by a stage (duplicates)
	RecordsFlushed atomic.Int64 // records whose flush completed
	Flushes        atomic.Int64
	FilesWritten   atomic.Int64
	RowsWritten    atomic.Int64
	BytesWritten   atomic.Int64
	FlushErrors    atomic.Int64 // failed flush attempts (retried)
	CommitErrors   atomic.Int64 // failed offset commits
	FetchErrors    atomic.Int64
	StateErrors    atomic.Int64 // failed state reads and writes (retried)
	StateConflicts atomic.Int64 // state moved by another member: a run of the partition given up
	Restarts       atomic.Int64 // partitions started again from their state after a conflict
	Replays        atomic.Int64 // pending ranges re-run after a restart
	DeadLetters    atomic.Int64 // rejected records sent to the dead-letter topic (each send)
	Notifications  atomic.Int64 // file notifications sent
}

// StatsSnapshot is a copy of Stats at one moment.
type StatsSnapshot struct {
	RecordsIn, EventsKept, EventsRejected, EventsDropped int64
	RecordsFlushed, Flushes, FilesWritten, RowsWritten   int64
	BytesWritten, FlushErrors, CommitErrors, FetchErrors int64
	StateErrors, StateConflicts, Restarts, Replays       int64
	DeadLetters, Notifications                           int64
}

// Snapshot copies the totals.
func (s *Stats) Snapshot() StatsSnapshot {
	return StatsSnapshot{
		RecordsIn:      s.RecordsIn.Load(),
		EventsKept:     s.EventsKept.Load(),
		EventsRejected: s.EventsRejected.Load(),
		EventsDropped:  s.EventsDropped.Load(),
		RecordsFlushed: s.RecordsFlushed.Load(),
		Flushes:        s.Flushes.Load(),
		FilesWritten:   s.FilesWritten.Load(),
		RowsWritten:    s.RowsWritten.Load(),
		BytesWritten:   s.BytesWritten.Load(),
		FlushErrors:    s.FlushErrors.Load(),
		CommitErrors:   s.CommitErrors.Load(),
		FetchErrors:    s.FetchErrors.Load(),
		StateErrors:    s.StateErrors.Load(),
		StateConflicts: s.StateConflicts.Load(),
		Restarts:       s.Restarts.Load(),
		Replays:        s.Replays.Load(),
		DeadLetters:    s.DeadLetters.Load(),
		Notifications:  s.Notifications.Load(),
	}
}
