package delivery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sluicedata/sluice/internal/failpoint"
	"github.com/sluicedata/sluice/pipeline"
)

// The errors of a flush, told apart with errors.Is and errors.As.
var (
	// ErrStopped: the context ended before the range was done. Nothing
	// past the last done range was committed; the next owner re-runs the
	// pending range, if one was recorded.
	ErrStopped = errors.New("flush stopped")
	// ErrFenced: the partition state was moved by another member, which
	// owns the partition now; this one must give it up without writing or
	// committing anything more.
	ErrFenced = errors.New("partition state moved by another member")
	// ErrBroken is pipeline.ErrSinkBroken: the sink cannot finish its files;
	// retrying cannot help, the process stops and the range is re-run.
	ErrBroken = pipeline.ErrSinkBroken
)

// RetryableError is a failure a later attempt may not have: the store or
// the broker could not be reached. Step names what failed.
type RetryableError struct {
	Step string // "state read", "state write", "upload"
	Err  error
}

func (e *RetryableError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *RetryableError) Unwrap() error { return e.Err }

// Retryable wraps err as a RetryableError of step.
func Retryable(step string, err error) error { return &RetryableError{Step: step, Err: err} }

// IsRetryable tells whether err is worth another attempt.
func IsRetryable(err error) bool {
	var r *RetryableError
	return errors.As(err, &r)
}

// Committer commits a partition's Kafka offset: next is one past the last
// record delivered. With a StateStore the commit is advisory (lag metrics,
// a fallback start); its failure loses nothing.
type Committer interface {
	Commit(ctx context.Context, next int64) error
}

// Range is one flush: the offsets [First, Last] of a partition, the
// Kafka time of its last record (where a later dedupe rebuild looks back
// from) and the latest Kafka time of its records (what seals hours).
type Range struct {
	First, Last   int64
	LastKafkaTime int64
	MaxKafkaTime  int64
}

// Hooks are the optional steps of a flush around its done state; nil
// fields are skipped.
type Hooks struct {
	// BeforeDone runs after the upload, before the range is recorded
	// done: what must be durable elsewhere first (the range's dead
	// letters, acknowledged by Kafka). A Retryable error is retried.
	BeforeDone func(ctx context.Context) error
	// AfterDone runs after the done state, before the commit, with the
	// range's files (their notifications). A Retryable error is retried;
	// the range stays done.
	AfterDone func(ctx context.Context, files []LedgerFile) error
	// HandedOff returns the time (ms) before which every hour's manifest
	// is written: the ledger drops those hours.
	HandedOff func() int64
	// Now is the wall clock (ms) that caps how far a range seals; default
	// time.Now.
	Now func() int64
}

func (h Hooks) now() int64 {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now().UnixMilli()
}

func (h Hooks) handedOff() int64 {
	if h.HandedOff != nil {
		return h.HandedOff()
	}
	return 0
}

// Result is what a completed flush did.
type Result struct {
	pipeline.FlushResult
	// CommitErr is the offset commit's failure, if it failed: the range is
	// delivered all the same, and a later flush commits past it.
	CommitErr error
}

// Flusher runs the flush protocol for one partition: pending → upload →
// done → commit. It is owned by the partition's worker.
//
// Flush may be called again with the same range after a RetryableError:
// it resumes at the step that failed. After ErrFenced, ErrBroken or
// ErrStopped the Flusher must not be used again (a new owner loads the
// state and re-runs the pending range).
type Flusher struct {
	ck     *Checkpoint // nil: at least once (Kafka offsets only)
	sink   pipeline.PartitionSink
	commit Committer
	hooks  Hooks

	// Progress of the range under way, so that a retry resumes.
	rng      Range
	inFlight bool
	pending  bool                  // the pending state is written
	uploaded *pipeline.FlushResult // the files are durable
	before   bool                  // Hooks.BeforeDone succeeded
	done     bool                  // the done state is written
	after    bool                  // Hooks.AfterDone succeeded
}

// NewFlusher returns the protocol for a partition. ck nil means at least
// once: no state, files uploaded then the offset committed.
func NewFlusher(ck *Checkpoint, sink pipeline.PartitionSink, commit Committer, hooks Hooks) *Flusher {
	return &Flusher{ck: ck, sink: sink, commit: commit, hooks: hooks}
}

// ledgerFiles is what the ledger records of a range's files.
func ledgerFiles(r Range, res pipeline.FlushResult) []LedgerFile {
	out := make([]LedgerFile, 0, len(res.Files))
	for _, f := range res.Files {
		o := "events"
		if f.Rejected {
			o = "rejected"
		}
		out = append(out, LedgerFile{Key: f.Key, Output: o, Rows: f.Rows, Bytes: f.Bytes,
			First: r.First, Last: r.Last, MinEventTime: f.MinEventTime, MaxEventTime: f.MaxEventTime, Hour: f.Hour})
	}
	return out
}

// Flush makes the range durable and commits past it:
//  1. with a state store, record the range as pending (compare-and-swap);
//  2. close and upload every file of the range (PartitionSink.Flush);
//  3. Hooks.BeforeDone (dead letters acknowledged);
//  4. record the range as done, Next = Last+1, with its files and counts
//     in the ledger and the hours it sealed;
//  5. Hooks.AfterDone (file notifications);
//  6. commit the Kafka offset Last+1.
//
// The errors: ErrStopped (ctx ended), ErrFenced (another member moved the
// state), ErrBroken (the sink cannot finish its files), or a
// RetryableError of the step that failed, after which Flush resumes there.
func (f *Flusher) Flush(ctx context.Context, r Range) (Result, error) {
	if f.inFlight && f.rng != r {
		return Result{}, fmt.Errorf("flush [%d, %d] while [%d, %d] is unfinished", r.First, r.Last, f.rng.First, f.rng.Last)
	}
	f.rng, f.inFlight = r, true
	stopped := func(err error) error {
		if ctx.Err() != nil && !errors.Is(err, ErrFenced) {
			return fmt.Errorf("%w: %w", ErrStopped, ctx.Err())
		}
		return err
	}
	if f.ck != nil && !f.pending {
		st := f.ck.State()
		st.Pending = &OffsetRange{First: r.First, Last: r.Last}
		if err := f.ck.Save(ctx, st); err != nil {
			return Result{}, stopped(err)
		}
		f.pending = true
		failpoint.Hit("state-pending")
	}
	if f.uploaded == nil {
		res, err := f.sink.Flush(ctx, r.First, r.Last)
		if err != nil {
			if errors.Is(err, ErrBroken) {
				return Result{}, err
			}
			return Result{}, stopped(Retryable("upload", err))
		}
		f.uploaded = &res
	}
	if f.hooks.BeforeDone != nil && !f.before {
		if err := f.hooks.BeforeDone(ctx); err != nil {
			return Result{}, stopped(err)
		}
		f.before = true
	}
	files := ledgerFiles(r, *f.uploaded)
	if f.ck != nil && !f.done {
		st := f.ck.State()
		st.Hours = slices.Clone(st.Hours)
		for i := range st.Hours {
			st.Hours[i].Files = slices.Clip(st.Hours[i].Files)
		}
		st.Pending = nil
		st.Next = r.Last + 1
		st.LastKafkaTime = r.LastKafkaTime
		st.addRange(r, *f.uploaded, files, f.hooks.now(), f.hooks.handedOff())
		if err := f.ck.Save(ctx, st); err != nil {
			return Result{}, stopped(err)
		}
		f.done = true
		failpoint.Hit("state-done")
	}
	if f.hooks.AfterDone != nil && !f.after {
		if err := f.hooks.AfterDone(ctx, files); err != nil {
			return Result{}, stopped(err)
		}
		f.after = true
	}
	out := Result{FlushResult: *f.uploaded}
	if f.commit != nil {
		out.CommitErr = f.commit.Commit(ctx, r.Last+1)
	}
	*f = Flusher{ck: f.ck, sink: f.sink, commit: f.commit, hooks: f.hooks}
	return out, nil
}

// Backoff is how long to wait between attempts: Initial, doubling up to
// Max.
type Backoff struct {
	Initial, Max time.Duration
}

// Retry runs op until it returns nil or an error that is not Retryable,
// waiting between attempts as b says; each failed attempt goes to
// onFailure (with the wait before the next). It returns ErrStopped when
// ctx ends first.
func Retry(ctx context.Context, b Backoff, onFailure func(err error, wait time.Duration), op func() error) error {
	wait := b.Initial
	for {
		err := op()
		if err == nil || !IsRetryable(err) {
			return err
		}
		if onFailure != nil {
			onFailure(err, wait)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("%w: %w (last error: %v)", ErrStopped, ctx.Err(), err)
		}
		wait = min(2*wait, b.Max)
	}
}
