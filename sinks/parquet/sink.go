// Package parquet writes sluice's output: per partition, one Parquet file
// per output (events, rejected) and Kafka hour, named after the offset range
// of the flush that closes it (DESIGN.md, "Output").
package parquet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/lz4"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"

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
	// RowGroupBytes: a row group is closed when its buffered, uncompressed
	// size reaches this. Default 32 MiB.
	RowGroupBytes int64
	// DisableRejected drops rejected records instead of writing the
	// rejected output (their offsets still resolve). Default false.
	DisableRejected bool
	// Version is written into each file's created_by. Default "dev".
	Version string
}

// pageBufferSize bounds each column's page buffer. parquet-go's default
// (256 KiB) costs about 1.6 MiB per open file with this schema; 32 KiB
// about 370 KiB, which is what makes many partitions × hours affordable.
const pageBufferSize = 32 << 10

// openFileOverhead is the measured memory of one open writer beyond its
// buffered data (page buffers, column buffers, dictionaries); Pending
// counts it so that memory_limit bounds files × partitions too.
const openFileOverhead = 384 << 10

// Validate reports every problem of o at once.
func (o Options) Validate() error {
	var errs []error
	if _, err := codec(o.Compression); err != nil {
		errs = append(errs, err)
	}
	if o.RowGroupBytes < 0 {
		errs = append(errs, errors.New("row group bytes must not be negative"))
	}
	return errors.Join(errs...)
}

func codec(name string) (compress.Codec, error) {
	switch strings.ToLower(name) {
	case "", "zstd":
		return &zstd.Codec{Level: zstd.SpeedDefault}, nil
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
	// Closed writers are reused (Reset) across files and partitions: a
	// writer's buffers are its cost, not its rows.
	evWriters, rejWriters sync.Pool

	store   Store
	opts    Options
	wopts   []pq.WriterOption
	rgBytes int64
}

// New returns a sink writing into store.
func New(store Store, opts Options) (*Sink, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("parquet sink: %w", err)
	}
	c, _ := codec(opts.Compression)
	if opts.Version == "" {
		opts.Version = "dev"
	}
	rg := opts.RowGroupBytes
	if rg == 0 {
		rg = 32 << 20
	}
	return &Sink{
		store:   store,
		opts:    opts,
		rgBytes: rg,
		wopts: []pq.WriterOption{
			pq.Compression(c),
			pq.CreatedBy("sluice", opts.Version, "release"),
			pq.PageBufferSize(pageBufferSize),
			pq.WriteBufferSize(8 << 10),
		},
	}, nil
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
	buf  *bytes.Buffer
	ew   *pq.GenericWriter[EventRow]
	rw   *pq.GenericWriter[RejectedRow]
	rows int64

	staged      []staged
	stagedRej   []RejectedRow
	stagedBytes int64

	batch []int32 // indexes into the batch being written
}

// stageRows is where a file gets its writer: about where staged rows cost
// as much memory as a writer's buffers.
const stageRows = 400

func (f *file) hasWriter() bool { return f.ew != nil || f.rw != nil }

func (f *file) size() int64 {
	switch {
	case f.ew != nil:
		return f.ew.Size() + openFileOverhead
	case f.rw != nil:
		return f.rw.Size() + openFileOverhead
	}
	return f.stagedBytes
}

// encodedSize is what the writer has encoded so far (not its buffers).
func (f *file) encodedSize() int64 {
	switch {
	case f.ew != nil:
		return f.ew.Size()
	case f.rw != nil:
		return f.rw.Size()
	}
	return 0
}

// closedFile is a finished file waiting for (another) upload attempt.
type closedFile struct {
	key  fileKey
	data []byte
	rows int64
}

// Partition is the PartitionSink of one partition.
type Partition struct {
	sink      *Sink
	topic     string
	partition int32

	files   map[fileKey]*file
	touched []*file
	closed  []closedFile // non-nil between a failed upload and its retry

	// Row scratch shared by every file of the partition: open files keep
	// no row buffers of their own.
	evRows  []EventRow
	rejRows []RejectedRow

	pendingRows int64
}

func hourOf(ms int64) int64 {
	h := ms / 3_600_000
	if ms < 0 && ms%3_600_000 != 0 {
		h--
	}
	return h
}

func (p *Partition) file(k fileKey) *file {
	if f, ok := p.files[k]; ok {
		return f
	}
	f := &file{key: k}
	p.files[k] = f
	return f
}

// openWriter gives f its writer and writes the staged rows to it.
func (p *Partition) openWriter(f *file) error {
	f.buf = new(bytes.Buffer)
	var err error
	if f.key.rejected {
		if w, ok := p.sink.rejWriters.Get().(*pq.GenericWriter[RejectedRow]); ok {
			w.Reset(f.buf)
			f.rw = w
		} else {
			f.rw = pq.NewGenericWriter[RejectedRow](f.buf, p.sink.wopts...)
		}
		_, err = f.rw.Write(f.stagedRej)
	} else {
		if w, ok := p.sink.evWriters.Get().(*pq.GenericWriter[EventRow]); ok {
			w.Reset(f.buf)
			f.ew = w
		} else {
			f.ew = pq.NewGenericWriter[EventRow](f.buf, p.sink.wopts...)
		}
		rows := p.evRows[:0]
		for i := range f.staged {
			rows = append(rows, f.staged[i].rowOf())
		}
		_, err = f.ew.Write(rows)
		clear(rows)
		p.evRows = rows[:0]
	}
	f.staged, f.stagedRej, f.stagedBytes = nil, nil, 0
	if err != nil {
		return fmt.Errorf("parquet write %s: %w", p.name(f.key, 0, 0), err)
	}
	return nil
}

// Write implements pipeline.PartitionSink.
func (p *Partition) Write(b *pipeline.Batch) error {
	if p.closed != nil {
		return errors.New("write while a flush is unfinished")
	}
	p.touched = p.touched[:0]
	for i := range b.Events {
		e := &b.Events[i]
		var f *file
		switch e.State {
		case pipeline.Keep:
			f = p.file(fileKey{hour: hourOf(e.KafkaTime)})
		case pipeline.Rejected:
			if p.sink.opts.DisableRejected {
				continue
			}
			f = p.file(fileKey{rejected: true, hour: hourOf(e.KafkaTime)})
		default:
			continue
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
	f.rows += n
	p.pendingRows += n
	if !f.hasWriter() {
		for _, i := range f.batch {
			e := &b.Events[i]
			if f.key.rejected {
				f.stagedRej = append(f.stagedRej, RejectedRow{})
				r := &f.stagedRej[len(f.stagedRej)-1]
				rejectedRow(r, e)
				r.Raw = bytes.Clone(r.Raw) // do not pin the fetch buffer
				f.stagedBytes += int64(unsafe.Sizeof(RejectedRow{})) + int64(len(r.Raw)+len(r.Error))
			} else {
				f.staged = append(f.staged, staged{})
				st := &f.staged[len(f.staged)-1]
				stageEvent(st, e)
				f.stagedBytes += stagedSize(&st.row)
			}
		}
		if f.rows < stageRows {
			return nil
		}
		return p.openWriter(f)
	}
	var err error
	if f.ew != nil {
		rows := p.evRows[:0]
		for _, i := range f.batch {
			rows = append(rows, EventRow{})
			eventRow(&rows[len(rows)-1], &b.Events[i])
		}
		_, err = f.ew.Write(rows)
		clear(rows)
		p.evRows = rows[:0]
	} else {
		rows := p.rejRows[:0]
		for _, i := range f.batch {
			rows = append(rows, RejectedRow{})
			rejectedRow(&rows[len(rows)-1], &b.Events[i])
		}
		_, err = f.rw.Write(rows)
		clear(rows)
		p.rejRows = rows[:0]
	}
	if err != nil {
		return fmt.Errorf("parquet write %s: %w", p.name(f.key, 0, 0), err)
	}
	if buffered := f.encodedSize() - int64(f.buf.Len()); buffered >= p.sink.rgBytes {
		if f.ew != nil {
			err = f.ew.Flush()
		} else {
			err = f.rw.Flush()
		}
		if err != nil {
			return fmt.Errorf("parquet row group %s: %w", p.name(f.key, 0, 0), err)
		}
	}
	return nil
}

// Pending implements pipeline.PartitionSink. Bytes include each open
// writer's fixed overhead and the staged rows.
func (p *Partition) Pending() (rows, bytes int64) {
	for _, f := range p.files {
		bytes += f.size()
	}
	for _, c := range p.closed {
		bytes += int64(len(c.data))
	}
	return p.pendingRows, bytes
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
	if p.closed == nil {
		closed, err := p.closeFiles()
		if err != nil {
			return pipeline.FlushResult{}, err
		}
		p.closed = closed
	}
	res := pipeline.FlushResult{Files: make([]pipeline.FileInfo, 0, len(p.closed))}
	for _, c := range p.closed {
		key := p.name(c.key, first, last)
		if err := p.sink.store.Put(ctx, key, bytes.NewReader(c.data), int64(len(c.data))); err != nil {
			return pipeline.FlushResult{}, fmt.Errorf("upload %s: %w", key, err)
		}
		failpoint.Hit("upload")
		res.Files = append(res.Files, pipeline.FileInfo{Key: key, Rows: c.rows, Bytes: int64(len(c.data)), Rejected: c.key.rejected})
	}
	p.closed = nil
	p.pendingRows = 0
	return res, nil
}

// closeFiles finishes every open file, in a fixed order (events before
// rejected, by hour), so that re-running a range uploads in the same order.
func (p *Partition) closeFiles() ([]closedFile, error) {
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
	closed := make([]closedFile, 0, len(keys))
	for _, k := range keys {
		f := p.files[k]
		if !f.hasWriter() {
			if err := p.openWriter(f); err != nil {
				return nil, err
			}
		}
		var err error
		if f.ew != nil {
			if err = f.ew.Close(); err == nil {
				p.sink.evWriters.Put(f.ew)
			}
		} else {
			if err = f.rw.Close(); err == nil {
				p.sink.rejWriters.Put(f.rw)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("parquet close: %w", err)
		}
		closed = append(closed, closedFile{key: k, data: f.buf.Bytes(), rows: f.rows})
	}
	clear(p.files)
	return closed, nil
}

// Discard implements pipeline.PartitionSink.
func (p *Partition) Discard() {
	clear(p.files)
	p.closed = nil
	p.pendingRows = 0
}
