package parquet

import (
	"bytes"
	"io"
	"net/netip"
	"slices"
	"sync"
	"unsafe"

	pq "github.com/parquet-go/parquet-go"

	"github.com/sluicedata/sluice/pipeline"
)

// output is one of the sink's two outputs, typed by its row: the contract
// columns of its files, how an event fills a row, and the writers and row
// scratch its files share (pooled across files and partitions).
type output[R any] struct {
	columns []Column
	fill    func(r *R, e *pipeline.Event)
	wopts   []pq.WriterOption
	writers sync.Pool // *pq.GenericWriter[R], closed and detached: ready for Reset
	scratch sync.Pool // *[]R of writeChunk rows
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
}

// writerSource opens writers of one output.
type writerSource interface {
	open(out io.Writer) rowWriter
}

func (o *output[R]) open(out io.Writer) rowWriter {
	if w, ok := o.writers.Get().(*pq.GenericWriter[R]); ok {
		w.Reset(out)
		return &typedWriter[R]{o: o, w: w}
	}
	return &typedWriter[R]{o: o, w: pq.NewGenericWriter[R](out, o.wopts...)}
}

// typedWriter is a rowWriter of the output of rows R.
type typedWriter[R any] struct {
	o *output[R]
	w *pq.GenericWriter[R]
}

// writeChunk is how many rows go to a writer at once. parquet-go turns a
// column's buffered values into a page only after a Write, so a Write of a
// whole batch (thousands of rows) grows every column buffer, and the pooled
// buffers keep that size: 10,000-row writes held ~19 MiB per partition in
// column buffers. 128 rows of this schema are about one 32 KiB page of the
// widest columns.
const writeChunk = 128

func (t *typedWriter[R]) write(n int, event func(i int) *pipeline.Event, full func() bool) error {
	sp, _ := t.o.scratch.Get().(*[]R)
	if sp == nil {
		sp = new([]R)
	}
	defer t.o.scratch.Put(sp)
	for done := 0; done < n; {
		m := min(n-done, writeChunk)
		rows := slices.Grow((*sp)[:0], m)[:m]
		for j := range rows {
			t.o.fill(&rows[j], event(done+j))
		}
		_, err := t.w.Write(rows)
		clear(rows) // drop references to the batch's strings
		*sp = rows[:0]
		if err != nil {
			return err
		}
		if full() {
			if err := t.w.Flush(); err != nil {
				return err
			}
		}
		done += m
	}
	return nil
}

func (t *typedWriter[R]) endRowGroup() error { return t.w.Flush() }
func (t *typedWriter[R]) size() int64        { return t.w.Size() }

func (t *typedWriter[R]) finish(written func() *io.SectionReader, rows int64) error {
	if err := t.w.Close(); err != nil {
		return err
	}
	if err := verify(written(), t.o.columns, rows); err != nil {
		return err
	}
	detachColumnPaths(t.w.File())
	t.o.writers.Put(t.w)
	return nil
}

// detachColumnPaths prepares a closed writer for Reset. parquet-go v0.32.0
// hands the column writers' own path slices to the footer's column chunks
// (path_in_schema), and Reset clears the footer's slices in place, so the
// next file of the writer would name every column "" (TestColumnChunkPaths,
// TestVerifyCatchesInvalidFiles). Giving the footer copies leaves Reset
// nothing of the writer's to clear.
func detachColumnPaths(f pq.FileView) {
	if f == nil {
		return
	}
	md := f.Metadata()
	for i := range md.RowGroups {
		for j := range md.RowGroups[i].Columns {
			c := &md.RowGroups[i].Columns[j].MetaData
			c.PathInSchema = slices.Clone(c.PathInSchema)
		}
	}
}

// staged is an event kept before its file has a writer: a copy of what
// its row needs (values only, so the batch can be reused), less what must
// not outlive the stages (raw user id, user agent, IP); a rejected event
// keeps its own copy of the raw record.
type staged struct{ e pipeline.Event }

func stageEvent(st *staged, e *pipeline.Event, rejected bool) int64 {
	st.e = *e
	// The raw identifiers never columns: not kept either.
	st.e.UserID, st.e.UserAgent, st.e.IP = "", "", netip.Addr{}
	st.e.DomainUserID, st.e.NetworkUserID = "", ""
	if rejected {
		st.e.Raw = bytes.Clone(e.Raw) // do not pin the fetch buffer
		return int64(unsafe.Sizeof(staged{})) + int64(len(st.e.Raw)+len(st.e.RejectReason))
	}
	st.e.Raw = nil
	n := int64(unsafe.Sizeof(staged{}))
	for _, s := range [...]string{e.EventID, e.EventName, e.AppID, e.Platform, e.SessionID, e.PageURL, e.Referrer,
		e.UserPseudoID, e.IPAnonymized, e.Properties, e.Extra, e.EventSchema, e.Contexts, e.DomainUserPseudoID, e.NetworkUserPseudoID} {
		n += int64(len(s))
	}
	return n
}
