// Package parquet writes sluice's output: per partition, one Parquet file
// per output (events, rejected) and Kafka hour, named after the offset range
// of the flush that closes it (DESIGN.md, "Output").
package parquet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/lz4"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"

	"github.com/sluicedata/sluice/internal/failpoint"
	"github.com/sluicedata/sluice/pipeline"
)

// Store is where finished files go. Put replaces key atomically and is
// durable on return (objstore.Store satisfies it).
type Store interface {
	Put(ctx context.Context, key string, r io.Reader, size int64) error
}

// Options configure the sink. Zero values take the documented defaults.
type Options struct {
	// Compression codec: zstd (default), snappy, gzip, lz4 or none.
	Compression string
	// ZstdLevel: fastest (default), default, better or best.
	ZstdLevel string
	// RowGroupBytes: a row group is closed when its size (encoded pages
	// plus values not yet encoded) reaches this. Default 8 MiB.
	RowGroupBytes int64
	// DisableRejected drops rejected records instead of writing the
	// rejected output (their offsets still resolve). Default false.
	DisableRejected bool
	// Version is written into each file's created_by. Default "dev".
	Version string
	// SpoolDir is the local directory files are built in until their
	// flush uploads them (in a subdirectory of this process's, removed by
	// Close). Empty keeps files in memory: memory_limit then counts them
	// whole.
	SpoolDir string
}

// dictionaryMaxBytes bounds the dictionary of each dictionary-encoded
// column (the low-cardinality ones: names, codes and places, user-agent
// fields; EventRow's dict tags) per row group: a column with more distinct
// text than this in a row group goes on in PLAIN encoding, so a writer's
// dictionaries cost at most this per column.
const dictionaryMaxBytes = 32 << 10

// A page's dictionary indexes are uint16 (column.idx): every value of a
// dictionary takes at least its 4-byte length, so it holds at most
// dictionaryMaxBytes/4 values. This fails to compile if that outgrows
// uint16.
const _ = uint16(dictionaryMaxBytes/4 - 1)

// openFileOverhead bounds the memory of one open writer beyond its open
// row group: a page buffer per column (up to pageBufferSize), scratch for
// one compressed page, the dictionaries' indexes. Pending counts it so
// that memory_limit bounds files × partitions too.
const openFileOverhead = 512 << 10

// Validate reports every problem of o at once.
func (o Options) Validate() error {
	var errs []error
	if _, err := codec(o.Compression, o.ZstdLevel); err != nil {
		errs = append(errs, err)
	}
	if o.RowGroupBytes < 0 {
		errs = append(errs, errors.New("row group bytes must not be negative"))
	}
	return errors.Join(errs...)
}

// zstdLevels are the zstd efforts by name. fastest (klauspost's
// SpeedFastest) is the default: its match tables (256 KiB) stay in a
// core's cache where the default level's (1.25 MiB) miss, which is most
// of zstd's cost when many files are written at once.
var zstdLevels = map[string]zstd.EncoderLevel{
	"": zstd.SpeedFastest, "fastest": zstd.SpeedFastest, "default": zstd.SpeedDefault,
	"better": zstd.SpeedBetterCompression, "best": zstd.SpeedBestCompression,
}

func codec(name, level string) (compress.Codec, error) {
	switch strings.ToLower(name) {
	case "", "zstd":
		l, ok := zstdLevels[level]
		if !ok {
			return nil, fmt.Errorf("zstd level %q: want fastest, default, better or best", level)
		}
		return &zstdCodec{level: l}, nil
	case "snappy":
		return &snappy.Codec{}, nil
	case "gzip":
		return &gzip.Codec{Level: gzip.DefaultCompression}, nil
	case "lz4":
		return &lz4.Codec{}, nil
	case "none", "uncompressed":
		return &uncompressed.Codec{}, nil
	}
	return nil, fmt.Errorf("compression %q: want zstd, snappy, gzip, lz4 or none", name)
}

// Sink writes Parquet files into a Store. It is safe for concurrent use by
// the partition workers; each PartitionSink is owned by one worker.
type Sink struct {
	store Store
	opts  Options
	// outputs are events (0) and rejected (1).
	outputs [2]*output
	rgBytes int64
	spool   *spoolDir // nil: files are built in memory
	// shrinkMin: Shrink leaves open row groups smaller than this
	// (minShrinkRowGroup; tests lower it).
	shrinkMin int64
}

// New returns a sink writing into store.
func New(store Store, opts Options) (*Sink, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("parquet sink: %w", err)
	}
	c, _ := codec(opts.Compression, opts.ZstdLevel)
	if opts.Version == "" {
		opts.Version = "dev"
	}
	rg := opts.RowGroupBytes
	if rg == 0 {
		rg = 8 << 20
	}
	var spool *spoolDir
	if opts.SpoolDir != "" {
		var err error
		if spool, err = openSpool(opts.SpoolDir); err != nil {
			return nil, fmt.Errorf("parquet sink: %w", err)
		}
	}
	s := &Sink{
		store:     store,
		opts:      opts,
		rgBytes:   rg,
		spool:     spool,
		shrinkMin: minShrinkRowGroup,
	}
	createdBy := "sluice version " + opts.Version + "(build release)"
	s.outputs = [2]*output{
		newOutput(EventRow{}, EventColumns, addEvents, c, createdBy),
		newOutput(RejectedRow{}, RejectedColumns, addRejected, c, createdBy),
	}
	return s, nil
}

// Close removes the spool directory. The partitions must be done.
func (s *Sink) Close() error {
	if s.spool == nil {
		return nil
	}
	return s.spool.close()
}

// SpoolPath is the directory files are built in ("" in memory).
func (s *Sink) SpoolPath() string {
	if s.spool == nil {
		return ""
	}
	return s.spool.dir
}

func (s *Sink) newSpoolFile() (spoolFile, error) {
	if s.spool == nil {
		return new(memFile), nil
	}
	return s.spool.create()
}

// OpenPartition implements pipeline.Sink.
func (s *Sink) OpenPartition(topic string, partition int32) (pipeline.PartitionSink, error) {
	return &Partition{
		sink:      s,
		topic:     topic,
		partition: partition,
		files:     make(map[fileKey]*file),
	}, nil
}

// fileKey identifies an open file: output and Kafka hour.
type fileKey struct {
	rejected bool
	hour     int64 // Unix hour of the Kafka timestamp
}

// file is one output file being built. Until it holds stageRows rows it
// has no Parquet writer (whose buffers cost openFileOverhead) and keeps its
// rows staged as values; then a writer takes the staged rows and streams
// the rest. Many partitions × hours of sparse files thus cost their rows,
// not a writer each.
type file struct {
	key  fileKey
	out  spoolFile // nil until the file has a writer
	w    rowWriter // nil until the file has a writer
	rows int64

	minEventTime, maxEventTime int64 // of the rows so far (events output)

	staged      []staged
	stagedBytes int64

	batch []int32 // indexes into the batch being written
}

// stageRows is where a file gets its writer: about where staged rows cost
// as much memory as a writer's buffers.
const stageRows = 400

// size is the file's size so far: encoded bytes, or its staged rows.
func (f *file) size() int64 {
	if f.w != nil {
		return f.w.size()
	}
	return f.stagedBytes
}

// rowGroupSize is what the writer holds of the open row group.
func (f *file) rowGroupSize() int64 {
	if f.w == nil {
		return 0
	}
	return f.size() - f.out.Len()
}

// memory is what the file holds in memory: its staged rows, or its
// writer's buffers and open row group (and, built in memory, all of it).
func (f *file) memory() int64 {
	switch {
	case f.w == nil:
		return f.stagedBytes
	case f.out.InMemory():
		return f.size() + openFileOverhead
	}
	return f.rowGroupSize() + openFileOverhead
}

// closedFile is a finished file waiting for (another) upload attempt.
type closedFile struct {
	key                        fileKey
	out                        spoolFile
	rows                       int64
	minEventTime, maxEventTime int64
}

// Partition is the PartitionSink of one partition.
type Partition struct {
	sink      *Sink
	topic     string
	partition int32

	files   map[fileKey]*file
	touched []*file
	closed  []closedFile // files closed, upload not done: Flush must be retried
	broken  error        // a file could not be finished: the sink is unusable

	pendingRows int64
	hours       []pipeline.HourCount // of the records since the last flush, by hour
}

// count returns the HourCount of hour h, adding it in hour order.
func (p *Partition) count(h int64) *pipeline.HourCount {
	n := len(p.hours)
	if n > 0 && p.hours[n-1].Hour == h {
		return &p.hours[n-1]
	}
	i, found := slices.BinarySearchFunc(p.hours, h, func(c pipeline.HourCount, h int64) int { return cmp.Compare(c.Hour, h) })
	if !found {
		p.hours = slices.Insert(p.hours, i, pipeline.HourCount{Hour: h})
	}
	return &p.hours[i]
}

func (p *Partition) file(k fileKey) *file {
	if f, ok := p.files[k]; ok {
		return f
	}
	f := &file{key: k}
	p.files[k] = f
	return f
}

// openWriter gives f its writer (reused across files: a writer's buffers
// are its cost, not its rows) and writes the staged rows to it.
func (p *Partition) openWriter(f *file) error {
	out, err := p.sink.newSpoolFile()
	if err != nil {
		return err
	}
	f.out = out
	f.w = p.sink.output(f.key).open(f.out)
	err = f.w.write(len(f.staged), func(i int) *pipeline.Event { return &f.staged[i].e }, p.rowGroupFull(f))
	f.staged, f.stagedBytes = nil, 0
	if err != nil {
		return fmt.Errorf("parquet write %s: %w", p.name(f.key, 0, 0), err)
	}
	return nil
}

// output is the writer source of k's output.
func (s *Sink) output(k fileKey) *output {
	if k.rejected {
		return s.outputs[1]
	}
	return s.outputs[0]
}

// Write implements pipeline.PartitionSink.
func (p *Partition) Write(b *pipeline.Batch) error {
	if p.broken != nil {
		return p.broken
	}
	if len(p.closed) > 0 {
		return errors.New("write while a flush is unfinished")
	}
	p.touched = p.touched[:0]
	var hc *pipeline.HourCount
	// last: the file of the event before, which most events share (one
	// hour, one output): found without hashing its key.
	var last *file
	for i := range b.Events {
		e := &b.Events[i]
		h := pipeline.HourMs(e.KafkaTime, b.SealedBefore)
		if hc == nil || hc.Hour != h {
			hc = p.count(h)
		}
		hc.Records++
		var k fileKey
		switch e.State {
		case pipeline.Keep:
			hc.Events++
			k = fileKey{hour: h}
		case pipeline.Rejected:
			hc.Rejected++
			if p.sink.opts.DisableRejected {
				continue
			}
			k = fileKey{rejected: true, hour: h}
		default:
			if e.RejectStage == "dedupe" {
				hc.Duplicates++
			} else {
				hc.Filtered++
			}
			continue
		}
		f := last
		if f == nil || f.key != k {
			f = p.file(k)
			last = f
		}
		if len(f.batch) == 0 {
			p.touched = append(p.touched, f)
		}
		f.batch = append(f.batch, int32(i))
	}
	for _, f := range p.touched {
		if err := p.writeRows(f, b); err != nil {
			return err
		}
	}
	return nil
}

func (p *Partition) writeRows(f *file, b *pipeline.Batch) error {
	defer func() { f.batch = f.batch[:0] }()
	n := int64(len(f.batch))
	if !f.key.rejected {
		for j, i := range f.batch {
			t := b.Events[i].EventTime
			if (f.rows == 0 && j == 0) || t < f.minEventTime {
				f.minEventTime = t
			}
			if (f.rows == 0 && j == 0) || t > f.maxEventTime {
				f.maxEventTime = t
			}
		}
	}
	f.rows += n
	p.pendingRows += n
	if f.w == nil {
		if f.rows < stageRows {
			for _, i := range f.batch {
				f.staged = append(f.staged, staged{})
				f.stagedBytes += stageEvent(&f.staged[len(f.staged)-1], &b.Events[i], f.key.rejected)
			}
			return nil
		}
		// The file has its writer's worth of rows with this batch: the
		// batch's rows go to the writer straight after those staged
		// before, not through a copy (a first batch of a thousand rows
		// staged took 700 KB, a third of what the sink allocated at 64
		// partitions).
		if err := p.openWriter(f); err != nil {
			return err
		}
	}
	if err := f.w.write(len(f.batch), func(i int) *pipeline.Event { return &b.Events[f.batch[i]] }, p.rowGroupFull(f)); err != nil {
		return fmt.Errorf("parquet write %s: %w", p.name(f.key, 0, 0), err)
	}
	return nil
}

// rowGroupFull tells, after each chunk written to f, whether f's open row
// group reached the row-group size; the writer then ends it.
func (p *Partition) rowGroupFull(f *file) func() bool {
	return func() bool { return f.rowGroupSize() >= p.sink.rgBytes }
}

// minShrinkRowGroup: Shrink leaves smaller row groups open, so that memory
// pressure does not cut files into row groups too small to read well.
const minShrinkRowGroup = 1 << 20

// Shrink implements pipeline.PartitionSink: the open row groups of files
// built on disk (of at least minShrinkRowGroup) are written out.
func (p *Partition) Shrink() error {
	for _, f := range p.files {
		if f.w == nil || f.out.InMemory() || f.rowGroupSize() < p.sink.shrinkMin {
			continue
		}
		if err := f.w.endRowGroup(); err != nil {
			return fmt.Errorf("parquet row group %s: %w", p.name(f.key, 0, 0), err)
		}
	}
	return nil
}

// Pending implements pipeline.PartitionSink. Memory includes each open
// writer's fixed overhead and the staged rows.
func (p *Partition) Pending() pipeline.Buffered {
	b := pipeline.Buffered{Rows: p.pendingRows}
	for _, f := range p.files {
		b.Bytes += f.size()
		b.Memory += f.memory()
	}
	for _, c := range p.closed {
		b.Bytes += c.out.Len()
		if c.out.InMemory() {
			b.Memory += c.out.Len()
		}
	}
	return b
}

// name is the object key of a file for the flush [first, last].
func (p *Partition) name(k fileKey, first, last int64) string {
	out := "events"
	if k.rejected {
		out = "rejected"
	}
	t := time.Unix(k.hour*3600, 0).UTC()
	return fmt.Sprintf("%s/date=%s/hour=%02d/%s+%d+%020d+%020d.parquet",
		out, t.Format("2006-01-02"), t.Hour(), p.topic, p.partition, first, last)
}

// Flush implements pipeline.PartitionSink.
func (p *Partition) Flush(ctx context.Context, first, last int64) (pipeline.FlushResult, error) {
	if p.broken != nil {
		return pipeline.FlushResult{}, p.broken
	}
	if len(p.closed) == 0 {
		if err := p.closeFiles(); err != nil {
			// Retrying cannot help (a full spool disk, a writer
			// error): the range must be re-run by a new owner.
			p.broken = fmt.Errorf("%w: %w", pipeline.ErrSinkBroken, err)
			return pipeline.FlushResult{}, p.broken
		}
	}
	res := pipeline.FlushResult{Files: make([]pipeline.FileInfo, 0, len(p.closed)), Hours: slices.Clone(p.hours)}
	for _, c := range p.closed {
		key := p.name(c.key, first, last)
		if err := p.sink.store.Put(ctx, key, c.out.Reader(), c.out.Len()); err != nil {
			return pipeline.FlushResult{}, fmt.Errorf("upload %s: %w", key, err)
		}
		failpoint.Hit("upload")
		res.Files = append(res.Files, pipeline.FileInfo{Key: key, Rows: c.rows, Bytes: c.out.Len(), Rejected: c.key.rejected,
			Hour: c.key.hour, MinEventTime: c.minEventTime, MaxEventTime: c.maxEventTime})
	}
	p.release()
	p.pendingRows = 0
	p.hours = p.hours[:0]
	return res, nil
}

// closeFiles finishes every open file into p.closed, in a fixed order
// (events before rejected, by hour), so that re-running a range uploads in
// the same order.
func (p *Partition) closeFiles() error {
	keys := make([]fileKey, 0, len(p.files))
	for k := range p.files {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b fileKey) int {
		if a.rejected != b.rejected {
			if a.rejected {
				return 1
			}
			return -1
		}
		return int(a.hour - b.hour)
	})
	for _, k := range keys {
		f := p.files[k]
		if f.w == nil {
			if err := p.openWriter(f); err != nil {
				return err
			}
		}
		err := f.w.finish(f.out.Reader, f.rows)
		if err != nil {
			return fmt.Errorf("parquet close %s: %w", p.name(k, 0, 0), err)
		}
		p.closed = append(p.closed, closedFile{key: k, out: f.out, rows: f.rows, minEventTime: f.minEventTime, maxEventTime: f.maxEventTime})
		delete(p.files, k)
	}
	return nil
}

// release drops the closed files (uploaded, or given up).
func (p *Partition) release() {
	for _, c := range p.closed {
		c.out.Release()
	}
	p.closed = nil
}

// Discard implements pipeline.PartitionSink.
func (p *Partition) Discard() {
	for _, f := range p.files {
		if f.w != nil {
			f.w.discard()
		}
		if f.out != nil {
			f.out.Release()
		}
	}
	clear(p.files)
	p.release()
	p.broken = nil
	p.pendingRows = 0
	p.hours = p.hours[:0]
}
