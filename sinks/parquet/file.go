package parquet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sync"
	"unsafe"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/sluicedata/sluice/internal/hugemem"
	"github.com/sluicedata/sluice/pipeline"
)

// sluice writes its Parquet files itself (this file and encode.go): a flat
// schema of required and optional leaves, DATA_PAGE_V2 pages, PLAIN
// values, RLE_DICTIONARY indexes or DELTA_BINARY_PACKED integers,
// statistics, and the page index. The
// schema is declared once, by the row structs of rows.go (parquet-go's
// schema of them gives the file's schema elements and column orders), and
// parquet-go's format package and thrift encoder write the metadata. What
// parquet-go's general writer spent per value — reflection over row
// structs, per-value column buffers, a dictionary map per value, bounds
// recomputed per page — is the work this writer does not do.

// colSpec is one leaf column of a layout.
type colSpec struct {
	name     string
	kind     kind
	ptype    format.Type
	optional bool
	dict     bool // dictionary-encoded (the row struct's dict tag)
}

// layout is an output's file schema.
type layout struct {
	cols   []colSpec
	schema []format.SchemaElement
	orders []format.ColumnOrder
}

// layoutOf derives the layout from parquet-go's schema of a row struct:
// the same schema elements parquet-go's writer would write (less the
// type_length it sets on numbers, which Parquet defines only for fixed-
// length byte arrays).
func layoutOf(s *pq.Schema) *layout {
	fields := s.Fields()
	l := &layout{schema: []format.SchemaElement{{Name: s.Name(), NumChildren: thrift.New(int32(len(fields)))}}}
	for _, f := range fields {
		t := f.Type()
		if !f.Leaf() || f.Repeated() || t.PhysicalType() == nil {
			panic(fmt.Sprintf("parquet: column %s: only flat required or optional columns", f.Name()))
		}
		c := colSpec{name: f.Name(), ptype: *t.PhysicalType(), optional: f.Optional()}
		switch t.Kind() {
		case pq.ByteArray:
			c.kind = kindBytes
		case pq.Int32:
			c.kind = kindInt32
		case pq.Int64:
			c.kind = kindInt64
		case pq.Double:
			c.kind = kindDouble
		case pq.Boolean:
			c.kind = kindBool
		default:
			panic(fmt.Sprintf("parquet: column %s: type %s not written", f.Name(), t))
		}
		if e := f.Encoding(); e != nil && e.Encoding() == format.RLEDictionary {
			if c.kind != kindBytes {
				panic(fmt.Sprintf("parquet: column %s: dictionaries are for byte arrays", f.Name()))
			}
			c.dict = true
		}
		rep := format.Required
		if c.optional {
			rep = format.Optional
		}
		e := format.SchemaElement{Name: c.name, Type: thrift.New(c.ptype), RepetitionType: thrift.New(rep)}
		if lt := t.LogicalType(); lt != nil {
			e.LogicalType = *lt
		}
		if ct := t.ConvertedType(); ct != nil {
			e.ConvertedType = thrift.New(*ct)
		}
		l.cols = append(l.cols, c)
		l.schema = append(l.schema, e)
		l.orders = append(l.orders, *t.ColumnOrder())
	}
	return l
}

// column is the state of one column in a file writer: its open page and
// what its open row group holds.
type column struct {
	spec *colSpec

	// The open page: definition levels (optional columns: bit i set for
	// value i not NULL; the bits from n on are clear), PLAIN values or
	// dictionary indexes, and the values' statistics.
	defs     []uint64
	vals     []byte
	idx      []uint16 // a dictionary holds at most dictionaryMaxBytes/4 values
	n, nulls int
	page     stats

	// The open row group.
	useDict bool // still dictionary-encoding (until the dictionary is full)
	dict    dictionary
	chunk   blockBuf // encoded data pages, headers included
	locs    []format.PageLocation
	index   format.ColumnIndex
	rows    int64
	st      stats
	rawSize int64 // headers plus uncompressed pages
	dictPgs int32
	plain   int32
	delta   int32 // DELTA_BINARY_PACKED pages
}

func (c *column) pageBytes() int { return len(c.vals) + 2*len(c.idx) }

// fileWriter writes one file of an output. It implements rowWriter.
type fileWriter struct {
	o    *output
	out  io.Writer
	off  int64 // bytes written to out
	err  error // the first error: the file is lost
	cols []column
	rows int64 // of the open row group
	all  int64 // of the file

	rowGroups []format.RowGroup
	indexes   []format.ColumnIndex // per row group and column
	offsets   []format.OffsetIndex

	// Scratch.
	chunk              []*pipeline.Event // the rows being written (write)
	levels, body, comp []byte
	wbuf               *[]byte  // gathered bytes (gather), else nil
	bnd                [16]byte // numeric bounds, encoded
	pre                []byte   // the columns' open-page buffers (presize)
	preClass           *hugemem.Class
	meta               bytes.Buffer
	enc                *thrift.Encoder
}

func newFileWriter(o *output) *fileWriter {
	w := &fileWriter{o: o, cols: make([]column, len(o.layout.cols))}
	for i := range w.cols {
		w.cols[i].spec = &o.layout.cols[i]
		w.cols[i].useDict = w.cols[i].spec.dict
	}
	w.presize()
	w.enc = thrift.NewEncoder(new(thrift.CompactProtocol).NewWriter(&w.meta))
	return w
}

// presize gives each column's open page the buffers a full page fills
// (one array for the bytes, one for the dictionary indexes), where append
// grew them from empty in every new writer, by a quarter at a time: each
// buffer was copied about five times over, a third of the bytes the
// process allocated at 64 partitions. A value that overflows a buffer
// grows it as before; a dictionary column's PLAIN values (after its
// dictionary is full) start empty.
func (w *fileWriter) presize() {
	// A page ends on its first value past pageBufferSize.
	const valsCap = pageBufferSize + 256
	sizes := func(c *colSpec) (defs, vals, idx int) {
		if c.optional {
			defs = maxPageValues / 64
		}
		switch {
		case c.dict:
			idx = maxPageValues
		case c.kind == kindBool:
			vals = maxPageValues
		default:
			vals = valsCap
		}
		return defs, vals, idx
	}
	var nd, nb, ni int
	for i := range w.cols {
		d, v, x := sizes(w.cols[i].spec)
		nd, nb, ni = nd+d, nb+v, ni+x
	}
	// One block of hugemem for the three (8-byte aligned: the uint64s
	// first, then the uint16s, then the bytes): a writer's ~1 MiB of
	// buffers is touched as its first pages fill, a page fault per 4 KiB
	// in the Go heap. Given back by free.
	total := 8*nd + 2*ni + nb
	if c := hugemem.ClassOf(total); c != nil {
		w.pre, w.preClass = c.Get(), c
	} else {
		w.pre = make([]byte, total)
	}
	defs := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(w.pre))), nd)
	clear(defs) // a reused block holds a past writer's bits
	idx := unsafe.Slice((*uint16)(unsafe.Pointer(&w.pre[8*nd])), ni)
	bytes := w.pre[8*nd+2*ni : total : total]
	for i := range w.cols {
		c := &w.cols[i]
		d, v, x := sizes(c.spec)
		c.defs, defs = defs[:d:d], defs[d:]
		c.vals, bytes = bytes[:0:v], bytes[v:]
		c.idx, idx = idx[:0:x], idx[x:]
	}
}

// free gives back what the writer holds of hugemem (its open row group's
// blocks and its buffers); the writer is not used again.
func (w *fileWriter) free() {
	for i := range w.cols {
		c := &w.cols[i]
		c.chunk.release()
		c.defs, c.vals, c.idx = nil, nil, nil
	}
	if w.preClass != nil {
		w.preClass.Put(w.pre)
	}
	w.pre, w.preClass = nil, nil
}

// reset readies a finished writer for the file out.
func (w *fileWriter) reset(out io.Writer) {
	w.out, w.off, w.err, w.rows, w.all = out, 0, nil, 0, 0
	w.rowGroups, w.indexes, w.offsets = nil, nil, nil
}

func (w *fileWriter) codec() compress.Codec { return w.o.codec }

func (w *fileWriter) value(c *column, ok bool) bool {
	if c.spec.optional {
		if ok {
			c.defs[c.n>>6] |= 1 << (c.n & 63)
		}
	} else if !ok {
		panic("parquet: NULL in required column " + c.spec.name)
	}
	c.n++
	if !ok {
		c.nulls++
	}
	return ok
}

func (w *fileWriter) full(c *column) {
	if c.pageBytes() >= pageBufferSize || c.n >= maxPageValues {
		w.encodePage(c)
	}
}

// col is column i, which must be of kind k (addEvents and addRejected
// follow the layout: a mismatch is a programming error).
func (w *fileWriter) col(i int, k kind) *column {
	c := &w.cols[i]
	if c.spec.kind != k {
		panic("parquet: column " + c.spec.name + " written as another type")
	}
	return c
}

// The value writers below append one value to column c of the open row
// group (NULL when !ok, for the kinds that may be NULL); c must be of
// their kind (col). The column writers (strs, i64s, ...) append one value
// per event of a chunk to one column: a row group is filled a column at a
// time, so that each column's open page and dictionary stay in the CPU's
// caches over the chunk where a row at a time touched all of them per
// event. The bytes written are the same either way: a column's pages end
// on its own values only.

// str appends a BYTE_ARRAY value to column c.
func (w *fileWriter) str(c *column, v string, ok bool) {
	if ok && c.useDict {
		if idx, added := c.dict.lookup(v, dictionaryMaxBytes); added {
			w.value(c, true)
			c.idx = append(c.idx, uint16(idx))
			w.full(c)
			return
		}
		// The dictionary is full: its pages end here, PLAIN pages
		// follow for the rest of the row group.
		w.encodePage(c)
		c.useDict = false
	}
	if w.value(c, ok) {
		c.vals = binary.LittleEndian.AppendUint32(c.vals, uint32(len(v)))
		c.vals = append(c.vals, v...)
		c.page.str(v)
	}
	w.full(c)
}

// i64 appends an INT64 value to column c.
func (w *fileWriter) i64(c *column, v int64) {
	w.value(c, true)
	c.vals = binary.LittleEndian.AppendUint64(c.vals, uint64(v))
	c.page.int(v)
	w.full(c)
}

// i32 appends an INT32 value to column c.
func (w *fileWriter) i32(c *column, v int32) {
	w.value(c, true)
	c.vals = binary.LittleEndian.AppendUint32(c.vals, uint32(v))
	c.page.int(int64(v))
	w.full(c)
}

// f64 appends a DOUBLE value to column c.
func (w *fileWriter) f64(c *column, v float64, ok bool) {
	if w.value(c, ok) {
		c.vals = binary.LittleEndian.AppendUint64(c.vals, math.Float64bits(v))
		c.page.float(v)
	}
	w.full(c)
}

// boolean appends a BOOLEAN value to column c.
func (w *fileWriter) boolean(c *column, v bool, ok bool) {
	if w.value(c, ok) {
		b := byte(0)
		if v {
			b = 1
		}
		c.vals = append(c.vals, b)
		c.page.int(int64(b))
	}
	w.full(c)
}

// strs appends get(e) of each event to column i.
func (w *fileWriter) strs(i int, evs []*pipeline.Event, get func(e *pipeline.Event) (string, bool)) {
	c := w.col(i, kindBytes)
	for _, e := range evs {
		v, ok := get(e)
		w.str(c, v, ok)
	}
}

// i64s appends get(e) of each event to column i.
func (w *fileWriter) i64s(i int, evs []*pipeline.Event, get func(e *pipeline.Event) int64) {
	c := w.col(i, kindInt64)
	for _, e := range evs {
		w.i64(c, get(e))
	}
}

// i32s appends get(e) of each event to column i.
func (w *fileWriter) i32s(i int, evs []*pipeline.Event, get func(e *pipeline.Event) int32) {
	c := w.col(i, kindInt32)
	for _, e := range evs {
		w.i32(c, get(e))
	}
}

// f64s appends get(e) of each event to column i.
func (w *fileWriter) f64s(i int, evs []*pipeline.Event, get func(e *pipeline.Event) (float64, bool)) {
	c := w.col(i, kindDouble)
	for _, e := range evs {
		v, ok := get(e)
		w.f64(c, v, ok)
	}
}

// booleans appends get(e) of each event to column i.
func (w *fileWriter) booleans(i int, evs []*pipeline.Event, get func(e *pipeline.Event) (bool, bool)) {
	c := w.col(i, kindBool)
	for _, e := range evs {
		v, ok := get(e)
		w.boolean(c, v, ok)
	}
}

// header encodes h into w.meta (reset first).
func (w *fileWriter) header(h any) {
	w.meta.Reset()
	if err := w.enc.Encode(h); err != nil && w.err == nil {
		w.err = fmt.Errorf("encode page header: %w", err)
	}
}

// encodePage turns c's open page into a data page of its row group.
func (w *fileWriter) encodePage(c *column) {
	if c.n == 0 {
		return
	}
	enc := format.Plain
	body := c.vals
	switch {
	case c.useDict:
		enc = format.RLEDictionary
		c.dict.pageStats(c.idx, &c.page)
		bw := bitWidth(len(c.dict.pos))
		w.body = appendHybrid(append(w.body[:0], byte(bw)), c.idx, bw)
		body = w.body
		c.dictPgs++
	case c.spec.kind == kindBool:
		w.body = packLevels(w.body[:0], c.vals)
		body = w.body
		c.plain++
	case c.spec.kind == kindInt64 || c.spec.kind == kindInt32:
		// Timestamps, offsets and partitions: small deltas, a few bits
		// each, where PLAIN left zstd 8 bytes a value to find matches in.
		enc = format.DeltaBinaryPacked
		size := 8
		if c.spec.kind == kindInt32 {
			size = 4
		}
		w.body = appendDelta(w.body[:0], c.vals, size)
		body = w.body
		c.delta++
	default:
		c.plain++
	}
	c.page.nulls = int64(c.nulls)
	w.levels = w.levels[:0]
	if c.spec.optional {
		w.levels = appendLevels(w.levels, c.defs, c.n)
	}
	comp, err := w.codec().Encode(w.comp[:0], body)
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("compress page of %s: %w", c.spec.name, err)
	}
	w.comp = comp
	h := format.PageHeader{
		Type:                 format.DataPageV2,
		UncompressedPageSize: int32(len(w.levels) + len(body)),
		CompressedPageSize:   int32(len(w.levels) + len(comp)),
		DataPageHeaderV2: thrift.New(format.DataPageHeaderV2{
			NumValues:                  int32(c.n),
			NumNulls:                   int32(c.nulls),
			NumRows:                    int32(c.n),
			Encoding:                   enc,
			DefinitionLevelsByteLength: int32(len(w.levels)),
			IsCompressed:               thrift.New(true),
			Statistics:                 c.page.statistics(c.spec.kind, w.bnd[:0], false), // encoded right away
		}),
	}
	w.header(&h)
	c.locs = append(c.locs, format.PageLocation{Offset: int64(c.chunk.Len()), CompressedPageSize: int32(w.meta.Len()) + h.CompressedPageSize, FirstRowIndex: c.rows})
	c.chunk.append(w.meta.Bytes())
	c.chunk.append(w.levels)
	c.chunk.append(comp)
	c.rawSize += int64(w.meta.Len()) + int64(h.UncompressedPageSize)

	lo, hi := c.page.bounds(c.spec.kind, w.bnd[:0])
	c.index.NullPages = append(c.index.NullPages, !c.page.has)
	c.index.NullCounts = append(c.index.NullCounts, int64(c.nulls))
	if c.spec.kind == kindBytes {
		lo, hi = truncMin(lo, columnIndexBytes), truncMax(hi, columnIndexBytes)
	}
	c.index.MinValues = append(c.index.MinValues, append([]byte{}, lo...))
	c.index.MaxValues = append(c.index.MaxValues, append([]byte{}, hi...))

	c.st.merge(&c.page, c.spec.kind)
	c.rows += int64(c.n)
	c.page.reset()
	if c.spec.optional {
		clear(c.defs[:(c.n+63)/64])
	}
	c.vals, c.idx = c.vals[:0], c.idx[:0]
	if cap(c.vals) > 4*pageBufferSize { // a huge value: not kept by a pooled writer
		c.vals, w.body, w.comp = nil, nil, nil
	}
	c.n, c.nulls = 0, 0
}

// put appends p to the file (at offset w.off, which counts p at once).
// While a row group or a footer is being written (gather), the bytes are
// gathered into pieces of writeBufSize first.
func (w *fileWriter) put(p []byte) {
	if w.err != nil {
		return
	}
	w.off += int64(len(p))
	if w.wbuf == nil {
		w.emit(p)
		return
	}
	b := *w.wbuf
	if len(b)+len(p) > cap(b) {
		w.emit(b)
		b = b[:0]
	}
	if len(p) >= cap(b) {
		w.emit(p)
	} else {
		b = append(b, p...)
	}
	*w.wbuf = b
}

// emit writes p to the file; the first error loses the file.
func (w *fileWriter) emit(p []byte) {
	if w.err != nil || len(p) == 0 {
		return
	}
	if _, err := w.out.Write(p); err != nil {
		w.err = err
	}
}

// writeBufSize is the piece a row group's or a footer's bytes are
// gathered into before they are written: a column chunk's pages sit in
// blocks of 4 to 64 KiB and its page index in a few dozen bytes, and
// writing each as it came cost a system call every 6 KiB on average, and
// a file of a 64-partition run's share about 240 of them. The buffers
// are pooled and held only while a row group or footer is written: at
// most one per writer writing at that moment.
const writeBufSize = 64 << 10

var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, writeBufSize); return &b }}

// gather makes put gather its bytes until ungather(true); it reports
// whether this call began the gathering (a nested call does not).
func (w *fileWriter) gather() bool {
	if w.wbuf != nil {
		return false
	}
	w.wbuf = writeBufs.Get().(*[]byte)
	return true
}

// ungather, given gather's result, writes what was gathered and returns
// the buffer (nothing when began is false).
func (w *fileWriter) ungather(began bool) {
	if !began || w.wbuf == nil {
		return
	}
	w.emit(*w.wbuf)
	*w.wbuf = (*w.wbuf)[:0]
	writeBufs.Put(w.wbuf)
	w.wbuf = nil
}

var magic = []byte("PAR1")

// endRowGroup writes the open row group: per column its dictionary page,
// then its data pages.
func (w *fileWriter) endRowGroup() error {
	if w.rows == 0 || w.err != nil {
		return w.err
	}
	began := w.gather()
	if w.off == 0 {
		w.put(magic)
	}
	rg := format.RowGroup{NumRows: w.rows, FileOffset: w.off, Ordinal: int16(len(w.rowGroups))}
	for i := range w.cols {
		c := &w.cols[i]
		w.encodePage(c)
		start := w.off
		md := format.ColumnMetaData{
			Type:         c.spec.ptype,
			PathInSchema: []string{c.spec.name},
			Codec:        w.codec().CompressionCodec(),
			NumValues:    c.rows,
		}
		if c.spec.optional {
			md.Encoding = append(md.Encoding, format.RLE)
		}
		if c.dictPgs > 0 {
			comp, err := w.codec().Encode(w.comp[:0], c.dict.plain)
			if err != nil && w.err == nil {
				w.err = fmt.Errorf("compress dictionary of %s: %w", c.spec.name, err)
			}
			w.comp = comp
			h := format.PageHeader{
				Type:                 format.DictionaryPage,
				UncompressedPageSize: int32(len(c.dict.plain)),
				CompressedPageSize:   int32(len(comp)),
				DictionaryPageHeader: thrift.New(format.DictionaryPageHeader{NumValues: int32(len(c.dict.pos)), Encoding: format.Plain}),
			}
			w.header(&h)
			c.rawSize += int64(w.meta.Len() + len(c.dict.plain))
			w.put(w.meta.Bytes())
			w.put(comp)
			md.DictionaryPageOffset = start
			md.Encoding = append(md.Encoding, format.Plain, format.RLEDictionary)
			md.EncodingStats = append(md.EncodingStats,
				format.PageEncodingStats{PageType: format.DictionaryPage, Encoding: format.Plain, Count: 1},
				format.PageEncodingStats{PageType: format.DataPageV2, Encoding: format.RLEDictionary, Count: c.dictPgs})
		}
		if c.plain > 0 {
			if c.dictPgs == 0 {
				md.Encoding = append(md.Encoding, format.Plain)
			}
			md.EncodingStats = append(md.EncodingStats, format.PageEncodingStats{PageType: format.DataPageV2, Encoding: format.Plain, Count: c.plain})
		}
		if c.delta > 0 {
			md.Encoding = append(md.Encoding, format.DeltaBinaryPacked)
			md.EncodingStats = append(md.EncodingStats, format.PageEncodingStats{PageType: format.DataPageV2, Encoding: format.DeltaBinaryPacked, Count: c.delta})
		}
		md.DataPageOffset = w.off
		for j := range c.locs {
			c.locs[j].Offset += w.off
		}
		c.chunk.writeTo(w.put)
		md.TotalUncompressedSize = c.rawSize
		md.TotalCompressedSize = w.off - start
		md.Statistics = c.st.statistics(c.spec.kind, w.bnd[:0], true)
		rg.Columns = append(rg.Columns, format.ColumnChunk{FileOffset: start, MetaData: md})
		rg.TotalByteSize += c.rawSize
		rg.TotalCompressedSize += md.TotalCompressedSize
		w.indexes = append(w.indexes, c.index)
		w.offsets = append(w.offsets, format.OffsetIndex{PageLocations: c.locs})

		// Ready for the next row group.
		c.index, c.locs = format.ColumnIndex{}, nil
		c.chunk.release()
		c.rows, c.rawSize, c.dictPgs, c.plain, c.delta = 0, 0, 0, 0, 0
		c.st.reset()
		c.dict.reset()
		c.useDict = c.spec.dict
	}
	w.rowGroups = append(w.rowGroups, rg)
	w.all += w.rows
	w.rows = 0
	w.ungather(began)
	return w.err
}

// size is the bytes written plus those of the open row group.
func (w *fileWriter) size() int64 {
	n := w.off
	for i := range w.cols {
		c := &w.cols[i]
		n += int64(c.chunk.Len() + c.pageBytes() + len(c.dict.plain))
		if c.spec.optional {
			n += int64(c.n) // a level a byte, as the row groups have always been cut
		}
	}
	return n
}

// close writes the open row group, the page index and the footer.
func (w *fileWriter) close() error {
	began := w.gather()
	defer w.ungather(began) // after an error (a no-op once the footer's ungather ran)
	if err := w.endRowGroup(); err != nil {
		return err
	}
	if w.off == 0 {
		w.put(magic)
	}
	k := 0
	for g := range w.rowGroups {
		for i := range w.rowGroups[g].Columns {
			cc := &w.rowGroups[g].Columns[i]
			w.header(&w.indexes[k])
			cc.ColumnIndexOffset, cc.ColumnIndexLength = w.off, int32(w.meta.Len())
			w.put(w.meta.Bytes())
			k++
		}
	}
	k = 0
	for g := range w.rowGroups {
		for i := range w.rowGroups[g].Columns {
			cc := &w.rowGroups[g].Columns[i]
			w.header(&w.offsets[k])
			cc.OffsetIndexOffset, cc.OffsetIndexLength = w.off, int32(w.meta.Len())
			w.put(w.meta.Bytes())
			k++
		}
	}
	w.header(&format.FileMetaData{
		Version:      2,
		Schema:       w.o.layout.schema,
		NumRows:      w.all,
		RowGroups:    w.rowGroups,
		CreatedBy:    w.o.createdBy,
		ColumnOrders: w.o.layout.orders,
	})
	n := w.meta.Len()
	w.put(w.meta.Bytes())
	w.put(binary.LittleEndian.AppendUint32(nil, uint32(n)))
	w.put(magic)
	w.ungather(began)
	return w.err
}
