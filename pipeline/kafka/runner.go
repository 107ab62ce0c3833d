package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicedata/sluice/config"
	"github.com/sluicedata/sluice/internal/outage"
	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/pipeline/delivery"
)

// Options configure a Runner. Zero values take the documented defaults.
type Options struct {
	Brokers []string // required
	Topics  []string // required
	Group   string   // required
	// StartFrom is where a partition with no committed offset starts:
	// "earliest" (default) or "latest".
	StartFrom      string
	SessionTimeout time.Duration // default 45s
	ClientID       string        // default "sluice"
	MaxPollRecords int           // records per poll, default 10000

	// Roll: a partition flushes when its pending range reaches RollMaxRows
	// records, RollMaxBytes estimated output bytes, or is RollMaxAge old by
	// the wall clock (also when no new records arrive).
	RollMaxRows  int64         // default 1,000,000
	RollMaxBytes int64         // default 128 MiB
	RollMaxAge   time.Duration // default 5m

	// MemoryLimit: when the bytes buffered by all partitions pass it, every
	// partition holding at least its even share flushes early. Default
	// 512 MiB.
	MemoryLimit int64

	// ShutdownTimeout bounds the drain on shutdown and on revocation; a
	// partition not flushed by then is released without committing.
	ShutdownTimeout time.Duration // default 30s
	// RetryBackoff is the first wait after a failed flush; it doubles up to
	// RetryBackoffMax. Defaults 200ms and 10s.
	RetryBackoff    time.Duration
	RetryBackoffMax time.Duration

	// KafkaOpts are extra client options (TLS, SASL) for every client the
	// runner makes.
	KafkaOpts []kgo.Opt
	// GroupClientOpts are options for the consumer-group client only
	// (metrics hooks, which register once).
	GroupClientOpts []kgo.Opt

	// Observer, when set, receives per-stage and per-flush measurements.
	Observer pipeline.Observer

	// StoreName names the store in logs (its URL). Default "object store".
	StoreName string

	// State, when set, makes delivery exactly once: each flush records its
	// range as pending before uploading and as done after, with
	// compare-and-swap writes, and a partition resumes from its state (a
	// pending range is re-run exactly) instead of the Kafka offset. Nil
	// means at least once: Kafka offsets only.
	State delivery.StateStore

	// CompleteAfter: an idle partition (consumed to its end, nothing
	// buffered) seals an hour this long after the hour ended, so that the
	// hour's manifest can be written. 0 never seals idle partitions.
	CompleteAfter time.Duration
	// HandedOff returns the time (ms) before which every hour's manifest
	// is written; the partition states' ledgers drop those hours. Nil: 0.
	HandedOff func() int64

	// DeadLetterTopic, when set, receives every rejected record (value
	// and key unchanged, reason and lineage in headers), produced through
	// Producer and acknowledged before its range is recorded done.
	DeadLetterTopic string
	// Producer produces the dead letters (an idempotent client with acks
	// from all in-sync replicas). Required with DeadLetterTopic.
	Producer *kgo.Client
	// Notify, when set, announces the files of each done range, after
	// the done state and before the commit (and again, for the last done
	// range, when a partition is assigned). An error is retried.
	Notify func(ctx context.Context, topic string, partition int32, files []delivery.LedgerFile) error
}

// setDefaults fills the zero fields of o from config.Default: the
// documented defaults live there, once.
func (o *Options) setDefaults() {
	d := config.Default()
	set := func(dst *time.Duration, v time.Duration) {
		if *dst == 0 {
			*dst = v
		}
	}
	if o.StartFrom == "" {
		o.StartFrom = d.Kafka.StartFrom
	}
	if o.ClientID == "" {
		o.ClientID = d.Kafka.ClientID
	}
	if o.MaxPollRecords == 0 {
		o.MaxPollRecords = d.Kafka.MaxPollRecords
	}
	if o.RollMaxRows == 0 {
		o.RollMaxRows = d.Sink.Roll.MaxRows
	}
	if o.RollMaxBytes == 0 {
		o.RollMaxBytes = int64(d.Sink.Roll.MaxBytes)
	}
	if o.MemoryLimit == 0 {
		o.MemoryLimit = int64(d.Sink.MemoryLimit)
	}
	set(&o.SessionTimeout, d.Kafka.SessionTimeout.D())
	set(&o.RollMaxAge, d.Sink.Roll.MaxAge.D())
	set(&o.ShutdownTimeout, d.ShutdownTimeout.D())
	set(&o.RetryBackoff, 200*time.Millisecond)
	set(&o.RetryBackoffMax, 10*time.Second)
	if o.StoreName == "" {
		o.StoreName = "object store"
	}
}

// Validate reports every problem of o at once.
func (o *Options) Validate() error {
	var errs []error
	if len(o.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one broker is required"))
	}
	if len(o.Topics) == 0 {
		errs = append(errs, errors.New("topics: at least one topic is required"))
	}
	if o.Group == "" {
		errs = append(errs, errors.New("group: a consumer group is required"))
	}
	if o.StartFrom != "" && o.StartFrom != "earliest" && o.StartFrom != "latest" {
		errs = append(errs, fmt.Errorf("start_from: %q is not earliest or latest", o.StartFrom))
	}
	if o.MaxPollRecords < 0 || o.RollMaxRows < 0 || o.RollMaxBytes < 0 || o.RollMaxAge < 0 {
		errs = append(errs, errors.New("poll and roll limits must not be negative"))
	}
	if o.DeadLetterTopic != "" && o.Producer == nil {
		errs = append(errs, errors.New("dead_letter_topic: needs a producer"))
	}
	return errors.Join(errs...)
}

type topicPartition struct {
	topic     string
	partition int32
}

// Runner consumes the topics as a member of a consumer group and runs one
// worker per assigned partition. Each worker processes its records in offset
// order through the stages into its PartitionSink and flushes offset ranges;
// a partition's Kafka offset is committed only after the flush that covers
// it has made its files durable.
type Runner struct {
	opts   Options
	stages pipeline.StageFactory
	sink   pipeline.Sink
	log    *slog.Logger
	stats  Stats
	pool   recordPool // fetch buffers, recycled by the workers
	// batches: the workers' batches, each taken for one run through the
	// stages and the sink. With many partitions, a batch (its events and
	// its text: ~200 KiB at maxBatch) of each worker's own would leave the
	// CPU's caches between two of that worker's turns; shared, the few in
	// use at once stay in them.
	batches sync.Pool

	lagMu sync.Mutex
	lag   map[topicPartition]int64 // records behind the high watermark, per partition

	joined  atomic.Bool  // in the group: assigned (possibly nothing), not lost since
	failing atomic.Int64 // partitions whose last flush attempt failed

	// flushSlots bounds flushes running at once: closing a partition's
	// files needs a writer's buffers per file, and a drain flushes every
	// partition together.
	flushSlots chan struct{}

	// buffered is the sum of the bytes the partitions report pending.
	buffered atomic.Int64

	client *kgo.Client

	// Outages of the brokers and of the store, logged at WARN once per
	// 30 s while they last and at INFO when they end.
	brokersDown, storeDown *outage.Log

	mu      sync.Mutex
	workers map[topicPartition]*worker
	failed  error
	cancel  context.CancelFunc
	// fencedWorkers ended after another member moved their partition's
	// state (worker.fenced); the poll loop restarts them (restartFenced),
	// and pollCancel ends its wait for records so that it does so at once.
	fencedWorkers []*worker
	pollCancel    context.CancelFunc
}

// NewRunner checks opts and returns a runner. It does not connect yet.
func NewRunner(opts Options, stages pipeline.StageFactory, sink pipeline.Sink, log *slog.Logger) (*Runner, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("pipeline options: %w", err)
	}
	opts.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{
		brokersDown: outage.New(log, "kafka broker", 0),
		storeDown:   outage.New(log, "object store", 0),
		flushSlots:  make(chan struct{}, 4),
		opts:        opts,
		stages:      stages,
		sink:        sink,
		log:         log,
		workers:     make(map[topicPartition]*worker),
		lag:         make(map[topicPartition]int64),
	}, nil
}

// Stats returns the runner's running totals.
func (r *Runner) Stats() *Stats { return &r.stats }

// Buffered returns the memory of the output all partitions are building
// (PartitionSink.Pending().Memory).
func (r *Runner) Buffered() int64 { return r.buffered.Load() }

// Lag returns, per assigned topic and partition, how many records the
// last fetch left behind the high watermark.
func (r *Runner) Lag() map[string]map[int32]int64 {
	r.mu.Lock()
	owned := make(map[topicPartition]bool, len(r.workers))
	for tp := range r.workers {
		owned[tp] = true
	}
	r.mu.Unlock()
	r.lagMu.Lock()
	defer r.lagMu.Unlock()
	out := map[string]map[int32]int64{}
	for tp, l := range r.lag {
		if !owned[tp] {
			delete(r.lag, tp)
			continue
		}
		if out[tp.topic] == nil {
			out[tp.topic] = map[int32]int64{}
		}
		out[tp.topic][tp.partition] = l
	}
	return out
}

// OldestPending is the age of the oldest record arrival not yet flushed
// (the end-to-end watermark); 0 when nothing is pending.
func (r *Runner) OldestPending() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var oldest int64
	for _, w := range r.workers {
		if t := w.pendingSinceNano.Load(); t > 0 && (oldest == 0 || t < oldest) {
			oldest = t
		}
	}
	if oldest == 0 {
		return 0
	}
	return time.Since(time.Unix(0, oldest))
}

// Ready reports nil when the runner has joined its group and no partition
// is failing to flush, and the reason otherwise.
func (r *Runner) Ready() error {
	if !r.joined.Load() {
		return errors.New("consumer group not joined yet")
	}
	if n := r.failing.Load(); n > 0 {
		return fmt.Errorf("%d partition(s) cannot flush to the store", n)
	}
	return nil
}

func (r *Runner) numWorkers() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int64(len(r.workers))
}

// Run consumes until ctx is canceled or a worker fails, then drains: it stops
// polling, flushes and commits every partition (bounded by ShutdownTimeout),
// and leaves the group. It returns nil after a clean drain on cancellation,
// and the failure otherwise.
func (r *Runner) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mu.Lock()
	r.cancel = cancel
	r.mu.Unlock()

	reset := kgo.NewOffset().AtStart()
	if r.opts.StartFrom == "latest" {
		reset = kgo.NewOffset().AtEnd()
	}
	kopts := []kgo.Opt{
		kgo.SeedBrokers(r.opts.Brokers...),
		kgo.ClientID(r.opts.ClientID),
		kgo.ConsumerGroup(r.opts.Group),
		kgo.ConsumeTopics(r.opts.Topics...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(r.opts.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, r.opts.SessionTimeout/3)),
		kgo.ConsumeResetOffset(reset),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Fetched-but-unprocessed records count against memory too: one
		// fetch in flight, at most 4 MiB (compressed), 1 MiB per
		// partition. 16 MiB held ~85 MiB of decompressed records at once.
		kgo.MaxConcurrentFetches(1),
		kgo.FetchMaxBytes(4 << 20),
		kgo.FetchMaxPartitionBytes(1 << 20),
		kgo.WithPools(&r.pool),
		kgo.OnPartitionsAssigned(r.assigned),
		kgo.OnPartitionsRevoked(r.revoked),
		kgo.OnPartitionsLost(r.lost),
		kgo.WithHooks(connHook{r.brokersDown}),
	}
	if r.opts.State != nil {
		kopts = append(kopts, kgo.AdjustFetchOffsetsFn(r.adjust))
	}
	kopts = append(kopts, r.opts.KafkaOpts...)
	kopts = append(kopts, r.opts.GroupClientOpts...)
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	r.client = cl
	r.log.Info("consuming", "topics", r.opts.Topics, "group", r.opts.Group)

	for ctx.Err() == nil {
		pollCtx, pollCancel := context.WithCancel(ctx)
		r.mu.Lock()
		r.pollCancel = pollCancel
		if len(r.fencedWorkers) > 0 {
			pollCancel() // a worker to restart: take what is there, wait for nothing
		}
		r.mu.Unlock()
		fetches := cl.PollRecords(pollCtx, r.opts.MaxPollRecords)
		if fetches.IsClientClosed() {
			pollCancel()
			break
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			r.stats.FetchErrors.Add(1)
			r.log.Warn("fetch error", "topic", topic, "partition", partition, "err", err)
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			r.lagMu.Lock()
			r.lag[topicPartition{p.Topic, p.Partition}] = max(p.HighWatermark-p.Records[len(p.Records)-1].Offset-1, 0)
			r.lagMu.Unlock()
			w := r.worker(p.Topic, p.Partition)
			if w == nil {
				// Cannot happen with BlockRebalanceOnPoll: assignment
				// precedes fetching, revocation waits for polls.
				r.log.Error("records for a partition without a worker", "topic", p.Topic, "partition", p.Partition)
				return
			}
			select {
			case w.in <- p.Records:
			case <-w.done:
			case <-ctx.Done():
			}
		})
		// Rebalances wait for AllowRebalance: the partitions this member
		// holds cannot change while fenced ones restart.
		r.restartFenced(ctx, cl)
		pollCancel()
		cl.AllowRebalance()
	}

	// Drain: every worker flushes what it has and commits, then we leave.
	drainCtx, drainCancel := context.WithTimeout(context.Background(), r.opts.ShutdownTimeout)
	defer drainCancel()
	r.stopAll(drainCtx)
	cl.Close()

	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *Runner) worker(topic string, partition int32) *worker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.workers[topicPartition{topic, partition}]
}

// fail records the first fatal error and stops the runner.
func (r *Runner) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failed == nil {
		r.failed = err
		r.log.Error("pipeline failed", "err", err)
	}
	if r.cancel != nil {
		r.cancel()
	}
}

func (r *Runner) assigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	r.joined.Store(true)
	for topic, partitions := range assigned {
		for _, p := range partitions {
			if err := r.startWorker(topic, p); err != nil {
				r.fail(fmt.Errorf("start partition %s/%d: %w", topic, p, err))
			}
		}
	}
}

func (r *Runner) startWorker(topic string, partition int32) error {
	tp := topicPartition{topic, partition}
	r.mu.Lock()
	_, exists := r.workers[tp]
	r.mu.Unlock()
	if exists {
		return nil
	}
	stages, err := r.stages(topic, partition)
	if err != nil {
		return err
	}
	ps, err := r.sink.OpenPartition(topic, partition)
	if err != nil {
		return err
	}
	w := newWorker(r, topic, partition, stages, ps)
	if r.opts.State == nil {
		w.init <- workerStart{start: -1} // no state to wait for
	}
	r.mu.Lock()
	r.workers[tp] = w
	r.mu.Unlock()
	r.log.Info("partition assigned", "topic", topic, "partition", partition)
	go w.run()
	return nil
}

// adjust runs after the group assigned partitions and their committed
// offsets were fetched, before fetching starts: it reads each new
// partition's state and moves the start to the state's position (a pending
// range's first offset, or the next undelivered one). A store it cannot
// read is retried until the session ends.
func (r *Runner) adjust(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	for topic, parts := range offsets {
		for p := range parts {
			w := r.worker(topic, p)
			if w == nil {
				continue
			}
			start, found, err := r.loadStart(ctx, topic, p)
			if err != nil {
				return nil, err
			}
			if found {
				parts[p] = kgo.NewOffset().At(start.start).WithEpoch(-1)
			}
			select {
			case w.init <- start:
			default: // already started (cannot happen: one adjust per assignment)
			}
		}
	}
	return offsets, nil
}

// loadStart reads a partition's state (retried while the store cannot be
// read, until ctx ends) and returns where its worker starts: the state's
// next offset, or the first of a pending range to re-run exactly; found
// false (start -1) without a state.
func (r *Runner) loadStart(ctx context.Context, topic string, p int32) (workerStart, bool, error) {
	var (
		ck    *delivery.Checkpoint
		found bool
	)
	err := delivery.Retry(ctx, delivery.Backoff{Initial: r.opts.RetryBackoff, Max: r.opts.RetryBackoffMax},
		func(err error, wait time.Duration) {
			r.stats.StateErrors.Add(1)
			r.storeDown.Fail(r.opts.StoreName, err)
			r.log.Debug("cannot read partition state; retrying", "topic", topic, "partition", p, "retry_in", wait, "err", err)
		},
		func() (err error) {
			ck, found, err = delivery.Load(ctx, r.opts.State, r.opts.Group, topic, p)
			if err != nil && !delivery.IsRetryable(err) {
				// A corrupt state is retried too: an operator can
				// repair it while /readyz and the log say why.
				err = delivery.Retryable("state read", err)
			}
			return err
		})
	if err != nil {
		return workerStart{}, false, fmt.Errorf("partition state %s/%d: %w", topic, p, err)
	}
	r.storeDown.OK(r.opts.StoreName)
	start := workerStart{ck: ck, start: -1}
	if found {
		st := ck.State()
		start.start = st.Next
		if st.Pending != nil {
			start.start = st.Pending.First
			rng := *st.Pending
			start.replay = &rng
			r.log.Info("re-running pending range", "topic", topic, "partition", p, "first", rng.First, "last", rng.Last)
		}
	}
	return start, found, nil
}

// fence queues a fenced worker for restartFenced and ends the poll
// loop's wait for records.
func (r *Runner) fence(w *worker) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fencedWorkers = append(r.fencedWorkers, w)
	if r.pollCancel != nil {
		r.pollCancel()
	}
}

// restartFenced starts each fenced partition again that this member still
// holds: a new worker from the state as it is now (the other member's
// ranges delivered, a pending one to re-run), and the client's position
// moved there. Called by the poll loop between a poll and AllowRebalance,
// when no rebalance can change what the member holds (a revocation or
// loss that came before took the worker out of r.workers: then there is
// nothing to restart). A zombie restarts too, until its client learns
// that its session is gone; the state's compare-and-swap keeps every
// range it may still try from being written twice.
func (r *Runner) restartFenced(ctx context.Context, cl *kgo.Client) {
	r.mu.Lock()
	fenced := r.fencedWorkers
	r.fencedWorkers = nil
	r.mu.Unlock()
	for _, w := range fenced {
		<-w.done // it ends right after the failed write
		tp := topicPartition{w.topic, w.partition}
		r.mu.Lock()
		held := r.workers[tp] == w
		if held {
			delete(r.workers, tp)
		}
		r.mu.Unlock()
		if !held || r.opts.State == nil {
			continue
		}
		start, found, err := r.loadStart(ctx, w.topic, w.partition)
		if err != nil {
			if ctx.Err() == nil {
				r.fail(err)
			}
			return
		}
		if err := r.startWorker(w.topic, w.partition); err != nil {
			r.fail(fmt.Errorf("restart partition %s/%d: %w", w.topic, w.partition, err))
			return
		}
		r.worker(w.topic, w.partition).init <- start
		if found {
			cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{w.topic: {w.partition: {Epoch: -1, Offset: start.start}}})
		}
		r.stats.Restarts.Add(1)
		r.log.Info("partition restarted from its state after another member moved it",
			"topic", w.topic, "partition", w.partition, "start", start.start)
	}
}

// revoked flushes and commits the revoked partitions before they are
// released, each within ShutdownTimeout.
func (r *Runner) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.ShutdownTimeout)
	defer cancel()
	r.stopPartitions(ctx, revoked, false)
}

// lost drops the lost partitions without committing: another member may
// own them already.
func (r *Runner) lost(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
	r.joined.Store(false) // out of the group until the next assignment
	r.stopPartitions(ctx, lost, true)
}

func (r *Runner) stopPartitions(ctx context.Context, parts map[string][]int32, discard bool) {
	var ws []*worker
	r.mu.Lock()
	for topic, partitions := range parts {
		for _, p := range partitions {
			tp := topicPartition{topic, p}
			if w, ok := r.workers[tp]; ok {
				delete(r.workers, tp)
				ws = append(ws, w)
			}
		}
	}
	r.mu.Unlock()
	r.stopWorkers(ctx, ws, discard)
}

func (r *Runner) stopAll(ctx context.Context) {
	r.mu.Lock()
	ws := make([]*worker, 0, len(r.workers))
	for tp, w := range r.workers {
		ws = append(ws, w)
		delete(r.workers, tp)
	}
	r.mu.Unlock()
	r.stopWorkers(ctx, ws, false)
}

func (r *Runner) stopWorkers(ctx context.Context, ws []*worker, discard bool) {
	for _, w := range ws {
		if discard {
			w.cancel()
		} else {
			w.drain()
		}
	}
	for _, w := range ws {
		select {
		case <-w.done:
		case <-ctx.Done():
			r.log.Warn("partition did not drain in time; releasing it without commit", "topic", w.topic, "partition", w.partition)
			w.cancel()
			<-w.done
		}
		if discard {
			r.log.Info("partition lost", "topic", w.topic, "partition", w.partition)
		} else {
			r.log.Info("partition released", "topic", w.topic, "partition", w.partition)
		}
	}
}

// connHook reports every dial of a broker to an outage log: the address
// and error of a broker that cannot be reached, and its recovery.
type connHook struct{ down *outage.Log }

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (h connHook) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	addr := net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
	if err != nil {
		h.down.Fail(addr, err)
		return
	}
	h.down.OK(addr)
}

// commit commits offset next (one past the last flushed record) for one
// partition and waits for the broker's answer.
func (r *Runner) commit(ctx context.Context, topic string, partition int32, epoch int32, next int64) error {
	var cerr error
	offsets := map[string]map[int32]kgo.EpochOffset{topic: {partition: {Epoch: epoch, Offset: next}}}
	r.client.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
					cerr = e
				}
			}
		}
	})
	if cerr != nil {
		return fmt.Errorf("commit %s/%d at %d: %w", topic, partition, next, cerr)
	}
	return nil
}
