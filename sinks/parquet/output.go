package parquet

import (
	"bytes"
	"io"
	"net/netip"
	"sync"
	"unsafe"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"

	"github.com/sluicedata/sluice/pipeline"
)

// output is one of the sink's two outputs: the contract columns of its
// files, their layout, how an event becomes a row, and the file writers
// its files share (pooled across files and partitions).
type output struct {
	columns   []Column
	layout    *layout
	add       func(w *fileWriter, evs []*pipeline.Event) // writes their rows, in order
	codec     compress.Codec
	createdBy string
	mu        sync.Mutex
	writers   []*fileWriter // finished: ready for reset; at most maxIdleWriters
}

// maxIdleWriters bounds the finished writers an output keeps for reuse;
// one finishing beyond them gives its memory back (free). Their buffers
// come from hugemem, which the collector does not reclaim: a sync.Pool
// would drop them unfreed. A few suffice: a writer freed and made again
// costs a huge page's fault, not one per 4 KiB, and idle writers would
// hold memory the Go limit gives up for them.
const maxIdleWriters = 8

func newOutput(row any, columns []Column, add func(*fileWriter, []*pipeline.Event), codec compress.Codec, createdBy string) *output {
	return &output{columns: columns, layout: layoutOf(pq.SchemaOf(row)), add: add, codec: codec, createdBy: createdBy}
}

// rowWriter is the Parquet writer of one file, whatever its output.
type rowWriter interface {
	// write writes the rows of n events, given by event(i), ending the
	// row group whenever full says so.
	write(n int, event func(i int) *pipeline.Event, full func() bool) error
	// endRowGroup writes the open row group to the file.
	endRowGroup() error
	// size is the bytes written plus those of the open row group.
	size() int64
	// finish closes the file, checks its footer read back (from the
	// reader written() gives then) against the output's columns and rows,
	// and gives the writer back to its pool. A file that fails the check
	// wraps errInvalidFile.
	finish(written func() *io.SectionReader, rows int64) error
	// discard gives back the writer's memory (its buffers and open row
	// group, lent by hugemem, which the collector does not reclaim); the
	// file is dropped and the writer is not used again.
	discard()
}

// open returns a writer (pooled, or new) of a file of o into out.
func (o *output) open(out io.Writer) rowWriter {
	var w *fileWriter
	o.mu.Lock()
	if n := len(o.writers); n > 0 {
		w, o.writers = o.writers[n-1], o.writers[:n-1]
	}
	o.mu.Unlock()
	if w == nil {
		w = newFileWriter(o)
	}
	w.reset(out)
	return w
}

// writeChunk is how many rows are written between checks of the row
// group's size.
const writeChunk = 128

func (w *fileWriter) write(n int, event func(i int) *pipeline.Event, full func() bool) error {
	for i := 0; i < n; i += writeChunk {
		w.chunk = w.chunk[:0]
		for j := i; j < min(i+writeChunk, n); j++ {
			w.chunk = append(w.chunk, event(j))
		}
		w.o.add(w, w.chunk)
		w.rows += int64(len(w.chunk))
		clear(w.chunk) // pins no event past the write
		if w.err != nil {
			return w.err
		}
		if full() {
			if err := w.endRowGroup(); err != nil {
				return err
			}
		}
	}
	return w.err
}

func (w *fileWriter) finish(written func() *io.SectionReader, rows int64) error {
	if err := w.close(); err != nil {
		return err
	}
	if err := verify(written(), w.o.columns, rows); err != nil {
		return err
	}
	w.out = nil
	o := w.o
	o.mu.Lock()
	keep := len(o.writers) < maxIdleWriters
	if keep {
		o.writers = append(o.writers, w)
	}
	o.mu.Unlock()
	if !keep {
		w.free()
	}
	return nil
}

func (w *fileWriter) discard() { w.free() }

// staged is an event kept before its file has a writer: a copy of what
// its row needs (values only, its text in one allocation of its own, so
// the batch and the decode arena its strings alias can be reused), less
// what must not outlive the stages (raw user id, user agent, IP); a
// rejected event keeps its own copy of the raw record.
type staged struct{ e pipeline.Event }

func stageEvent(st *staged, e *pipeline.Event, rejected bool) int64 {
	st.e = *e
	// The raw identifiers never columns: not kept either.
	st.e.UserID, st.e.UserAgent, st.e.IP = "", "", netip.Addr{}
	st.e.DomainUserID, st.e.NetworkUserID = "", ""
	n := int64(unsafe.Sizeof(staged{}))
	if rejected {
		st.e.Raw = bytes.Clone(e.Raw) // do not pin the fetch buffer
		n += int64(len(st.e.Raw))
	} else {
		st.e.Raw = nil
	}
	return n + ownText(&st.e)
}

// ownText points the event's text fields (those an input or a stage sets
// per event) at one copy of their own and returns its size. The geo and
// user-agent columns are the caches' own strings already.
func ownText(e *pipeline.Event) int64 {
	fields := [...]*string{&e.EventID, &e.EventName, &e.AppID, &e.Platform, &e.SessionID, &e.PageURL, &e.Referrer,
		&e.UserPseudoID, &e.PseudoKeyID, &e.IPAnonymized, &e.Properties, &e.Extra, &e.EventSchema, &e.Contexts,
		&e.DomainUserPseudoID, &e.NetworkUserPseudoID, &e.RejectStage, &e.RejectReason}
	n := 0
	for _, f := range fields {
		n += len(*f)
	}
	if n == 0 {
		return 0
	}
	buf := make([]byte, 0, n)
	for _, f := range fields {
		if len(*f) > 0 {
			at := len(buf)
			buf = append(buf, *f...)
			*f = unsafe.String(&buf[at], len(*f))
		}
	}
	return int64(n)
}
