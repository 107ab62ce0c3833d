package parquet

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/encoding/delta"

	"github.com/sluicedata/sluice/pipeline"
)

// decodeHybrid is the RLE/bit-packed hybrid decoder of the Parquet spec,
// written from the spec for the test: n values of width w.
func decodeHybrid(t *testing.T, b []byte, w uint, n int) []int32 {
	t.Helper()
	var out []int32
	for len(out) < n {
		h, k := binary.Uvarint(b)
		if k <= 0 {
			t.Fatalf("bad run header after %d values", len(out))
		}
		b = b[k:]
		if h&1 == 0 { // RLE run
			var v uint32
			for i := uint(0); i < (w+7)/8; i++ {
				v |= uint32(b[i]) << (8 * i)
			}
			b = b[(w+7)/8:]
			for range h >> 1 {
				out = append(out, int32(v))
			}
			continue
		}
		groups := int(h >> 1)
		nbytes := groups * int(w)
		if nbytes > len(b) {
			t.Fatalf("bit-packed run of %d groups past the end", groups)
		}
		for i := 0; i < groups*8; i++ {
			var v uint32
			for j := uint(0); j < w; j++ {
				bit := uint(i)*w + j
				v |= uint32(b[bit/8]>>(bit%8)&1) << j
			}
			out = append(out, int32(v))
		}
		b = b[nbytes:]
	}
	if len(b) != 0 {
		t.Fatalf("%d bytes left", len(b))
	}
	return out[:n]
}

func TestHybridRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for iter := range 3000 {
		w := uint(1 + r.IntN(20))
		n := r.IntN(3000)
		if iter%10 == 0 {
			n = r.IntN(20)
		}
		v := make([]int32, 0, n)
		for len(v) < n {
			x := int32(r.Uint32() & (1<<w - 1))
			run := 1
			if r.IntN(3) == 0 {
				run = 1 + r.IntN(200)
			}
			for i := 0; i < run && len(v) < n; i++ {
				v = append(v, x)
			}
		}
		enc := appendHybrid(nil, v, w)
		if got := decodeHybrid(t, enc, w, n); !slicesEqual(got, v) {
			t.Fatalf("width %d, %d values: decoded differently", w, n)
		}
		if w <= 16 { // dictionary indexes (uint16): the same bytes
			v16 := make([]uint16, n)
			for i := range v {
				v16[i] = uint16(v[i])
			}
			if !bytes.Equal(appendHybrid(nil, v16, w), enc) {
				t.Fatalf("width %d, %d uint16 values: encoded differently from int32", w, n)
			}
		}
		levels := make([]int32, n)
		defs := make([]uint64, (n+63)/64)
		for i := range levels {
			levels[i] = v[i] & 1
			defs[i>>6] |= uint64(levels[i]) << (i & 63)
		}
		enc = appendLevels(nil, defs, n)
		if got := decodeHybrid(t, enc, 1, n); !slicesEqual(got, levels) {
			t.Fatalf("%d levels: decoded differently", n)
		}
	}
	// Runs stay runs: a page of one level is a few bytes.
	ones := make([]uint64, maxPageValues/64)
	for i := range ones {
		ones[i] = ^uint64(0)
	}
	if enc := appendLevels(nil, ones, maxPageValues); len(enc) > 4 {
		t.Errorf("8192 equal levels in %d bytes", len(enc))
	}
}

// TestLevelsAsBits: a page's definition levels kept as bits encode to
// the bytes appendHybrid gives for them as values of width 1 (its own
// packing, value by value), over random pages with runs of every length,
// word edges and full pages.
func TestLevelsAsBits(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for iter := range 4000 {
		n := r.IntN(maxPageValues + 1)
		switch iter % 8 {
		case 0:
			n = r.IntN(130)
		case 1:
			n = maxPageValues
		}
		levels := make([]int32, n)
		for i := 0; i < n; {
			run := 1 + r.IntN(8)
			switch r.IntN(4) {
			case 0:
				run = 1 + r.IntN(300)
			case 1:
				run = 56 + r.IntN(16) // either side of the shortest RLE run
			}
			x := int32(r.IntN(2))
			if iter%5 == 0 {
				x = int32(i / run % 2) // alternating runs
			}
			for j := 0; j < run && i < n; j++ {
				levels[i] = x
				i++
			}
		}
		defs := make([]uint64, maxPageValues/64)
		for i, l := range levels {
			defs[i>>6] |= uint64(l) << (i & 63)
		}
		want := appendHybrid(nil, levels, 1)
		if got := appendLevels(nil, defs, n); !bytes.Equal(got, want) {
			t.Fatalf("%d levels (iteration %d): %x as bits, %x as bytes", n, iter, got, want)
		}
	}
	full := make([]uint64, maxPageValues/64)
	for i := range full {
		full[i] = ^uint64(0)
	}
	allOnes := make([]int32, maxPageValues)
	for i := range allOnes {
		allOnes[i] = 1
	}
	if got, want := appendLevels(nil, full, maxPageValues), appendHybrid(nil, allOnes, 1); !bytes.Equal(got, want) {
		t.Fatalf("a full page of ones: %x, want %x", got, want)
	}
}

func slicesEqual(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBoolsPlain(t *testing.T) {
	v := []byte{1, 0, 1, 1, 0, 0, 0, 0, 1, 1}
	if got := appendBools(nil, v); !bytes.Equal(got, []byte{0b1101, 0b11}) {
		t.Errorf("%08b", got)
	}
}

// The column index's truncated bounds still bound the value, are at most
// columnIndexBytes long and stay valid UTF-8.
func TestTruncatedBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "z", "~", "\x7f", "é", "€", "😀", "\xff"}
	for range 20000 {
		var sb strings.Builder
		for range r.IntN(30) {
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		v := []byte(sb.String())
		lo, hi := truncMin(v, columnIndexBytes), truncMax(v, columnIndexBytes)
		if bytes.Compare(lo, v) > 0 || !bytes.HasPrefix(v, lo) || len(lo) > columnIndexBytes {
			t.Fatalf("min %q of %q", lo, v)
		}
		if bytes.Compare(hi, v) < 0 || (len(hi) > columnIndexBytes && !bytes.Equal(hi, v)) {
			t.Fatalf("max %q of %q", hi, v)
		}
		if utf8.Valid(v) && (!utf8.Valid(lo) || !utf8.Valid(hi)) {
			t.Fatalf("bounds %q %q of %q not UTF-8", lo, hi, v)
		}
	}
}

func TestStatsDoubles(t *testing.T) {
	var s stats
	for _, v := range []float64{math.NaN(), 0, 2.5, math.Copysign(0, -1)} {
		s.float(v)
	}
	lo, hi := s.bounds(kindDouble, nil)
	if l := math.Float64frombits(binary.LittleEndian.Uint64(lo)); l != 0 || !math.Signbit(l) {
		t.Errorf("min %v: want -0", l)
	}
	if h := math.Float64frombits(binary.LittleEndian.Uint64(hi)); h != 2.5 {
		t.Errorf("max %v", h)
	}
	var z stats
	z.float(math.Copysign(0, -1))
	if _, hi := z.bounds(kindDouble, nil); math.Signbit(math.Float64frombits(binary.LittleEndian.Uint64(hi))) {
		t.Error("max of zeros must be +0")
	}
	var n stats
	n.float(math.NaN())
	if lo, _ := n.bounds(kindDouble, nil); lo != nil {
		t.Error("NaN only: no bounds")
	}
}

func TestBlockBuf(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for range 50 {
		var b blockBuf
		var want []byte
		for range r.IntN(40) {
			p := make([]byte, r.IntN(70<<10))
			for i := range p {
				p[i] = byte(r.Uint32())
			}
			b.append(p)
			want = append(want, p...)
		}
		var got []byte
		b.writeTo(func(p []byte) { got = append(got, p...) })
		if b.Len() != len(want) || !bytes.Equal(got, want) {
			t.Fatalf("blockBuf holds %d bytes, want %d", b.Len(), len(want))
		}
		if len(b.blocks) > 0 && cap(b.blocks[0]) != 1<<minBlockShift {
			t.Errorf("first block of %d bytes", cap(b.blocks[0]))
		}
		b.release()
	}
}

// TestNewWriterBuffersHoldAPage: a new writer's page buffers hold a full
// page from the start, so filling its first pages allocates nothing
// (presize), where append grew every buffer from empty.
func TestNewWriterBuffersHoldAPage(t *testing.T) {
	o := newOutput(EventRow{}, EventColumns, addEvents, &uncompressed.Codec{}, "test")
	w := newFileWriter(o)
	w.reset(io.Discard)
	// Below one page of each column: only appends, no page encoded.
	const n = 800 // run twice by AllocsPerRun: 1,600 values, a page of event_id holds 2,048
	allocs := testing.AllocsPerRun(1, func() {
		for i := range n {
			w.str(w.col(0, kindBytes), "0123456789ab", true)   // event_id: PLAIN, 16 bytes a value
			w.str(w.col(1, kindBytes), "page_view", true)      // event_name: dictionary indexes
			w.i64(w.col(2, kindInt64), int64(i))               // event_time
			w.str(w.col(4, kindBytes), "", false)              // app_id: NULL, definition levels
			w.f64(w.col(19, kindDouble), float64(i), i%2 == 0) // geo_latitude
			w.boolean(w.col(26, kindBool), i%3 == 0, true)     // ua_is_bot
		}
	})
	if allocs > 1 { // the dictionary's first value and its map
		t.Errorf("%v allocations filling a new writer's first pages, want at most 1", allocs)
	}
}

// TestDeltaBinaryPacked: appendDelta's pages decode to the values (by
// parquet-go's decoder, written apart from this one) for INT32 and INT64,
// at every length around the block and miniblock edges, with deltas of
// every width up to wrapping ones (MinInt64 after MaxInt64).
func TestDeltaBinaryPacked(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 5))
	var dec delta.BinaryPackedEncoding
	gens := map[string]func(i int) int64{
		"constant":   func(int) int64 { return 42 },
		"offsets":    func(i int) int64 { return 1_000_000 + int64(i) },
		"timestamps": func(i int) int64 { return 1_764_000_000_000 + int64(i)*37 - rng.Int64N(500) },
		"random":     func(int) int64 { return int64(rng.Uint64()) },
		"extremes": func(i int) int64 {
			return [...]int64{math.MinInt64, math.MaxInt64, 0, -1, math.MaxInt64, math.MinInt64}[i%6]
		},
		"widths": func(i int) int64 { return int64(rng.Uint64() >> (i % 64)) },
	}
	for name, gen := range gens {
		for _, n := range []int{1, 2, 31, 32, 33, 127, 128, 129, 130, 257, 1000, 4096} {
			v64 := make([]int64, n)
			v32 := make([]int32, n)
			var p64, p32 []byte
			for i := range n {
				v64[i] = gen(i)
				v32[i] = int32(v64[i])
				p64 = binary.LittleEndian.AppendUint64(p64, uint64(v64[i]))
				p32 = binary.LittleEndian.AppendUint32(p32, uint32(v32[i]))
			}
			got64, err := dec.DecodeInt64(nil, appendDelta(nil, p64, 8))
			if err != nil || !slices.Equal(got64, v64) {
				t.Fatalf("%s, %d INT64 values: decoded %v (err %v), want %v", name, n, head(got64), err, head(v64))
			}
			got32, err := dec.DecodeInt32(nil, appendDelta(nil, p32, 4))
			if err != nil || !slices.Equal(got32, v32) {
				t.Fatalf("%s, %d INT32 values: decoded %v (err %v), want %v", name, n, head(got32), err, head(v32))
			}
		}
	}
	// Offsets one apart take the header, one least delta per block and no
	// miniblock bytes: 4,096 of them in a few dozen bytes, not 32 KiB.
	var p []byte
	for i := range 4096 {
		p = binary.LittleEndian.AppendUint64(p, uint64(1<<40+i))
	}
	if n := len(appendDelta(nil, p, 8)); n > 4096/deltaBlock*(1+deltaMinis)+16 {
		t.Errorf("4,096 consecutive offsets took %d bytes", n)
	}
}

func head[T any](v []T) []T { return v[:min(len(v), 8)] }

// TestDictionaryQuickSlots: values that share a slot of the dictionary's
// quick table (one length, the same first and last eight bytes) keep
// their own indexes, found again in any order, and a value looked up
// after others took its slot is still found by the map.
func TestDictionaryQuickSlots(t *testing.T) {
	vals := []string{"aaaaaaaaXbbbbbbbb", "aaaaaaaaYbbbbbbbb", "aaaaaaaaZbbbbbbbb", "a", "ab", "abc", "abcd", "abcde", ""}
	if quickSlot(vals[0]) != quickSlot(vals[1]) || quickSlot(vals[1]) != quickSlot(vals[2]) {
		t.Fatal("the test's values no longer share a slot")
	}
	var d dictionary
	r := rand.New(rand.NewPCG(9, 9))
	want := map[string]int32{}
	for range 2000 {
		v := vals[r.IntN(len(vals))]
		idx, ok := d.lookup(v, dictionaryMaxBytes)
		if !ok {
			t.Fatal("dictionary full")
		}
		if w, seen := want[v]; seen && w != idx {
			t.Fatalf("%q: index %d, earlier %d", v, idx, w)
		}
		want[v] = idx
		if got := d.value(idx); got != v {
			t.Fatalf("%q: index %d holds %q", v, idx, got)
		}
	}
	if len(want) != len(vals) || len(d.pos) != len(vals) {
		t.Fatalf("%d values in the dictionary, want %d", len(d.pos), len(vals))
	}
}

// writeRecorder records the writes a file gets.
type writeRecorder struct {
	bytes.Buffer
	writes int
}

func (r *writeRecorder) Write(p []byte) (int, error) {
	r.writes++
	return r.Buffer.Write(p)
}

// TestRowGroupWritesGathered: a row group's column chunks, dictionaries
// and page index, and the footer, reach the file in pieces of about
// writeBufSize (gather), not one write per block, header and index: the
// file's bytes are the same, its offsets count every byte, and the
// writes are a handful per row group where there were hundreds.
func TestRowGroupWritesGathered(t *testing.T) {
	o := newOutput(EventRow{}, EventColumns, addEvents, &uncompressed.Codec{}, "test")
	gathered, direct := newFileWriter(o), newFileWriter(o)
	var g, d writeRecorder
	gathered.reset(&g)
	direct.reset(&d)
	rng := rand.New(rand.NewPCG(3, 4))
	var evs []*pipeline.Event
	for i := range 20_000 {
		e := &pipeline.Event{Topic: "events", Offset: int64(i), KafkaTime: 1772366400000 + int64(i),
			EventID: strconv.Itoa(rng.IntN(1 << 30)), EventName: []string{"page_view", "click"}[i%2], EventTime: int64(i)}
		if i%3 == 0 {
			e.PageURL, e.Present = "https://example.com/"+strconv.Itoa(rng.IntN(500)), pipeline.HasPageURL
		}
		evs = append(evs, e)
	}
	for _, w := range []*fileWriter{gathered, direct} {
		for i := 0; i < len(evs); i += 5000 {
			if err := w.write(5000, func(j int) *pipeline.Event { return evs[i+j] }, func() bool { return false }); err != nil {
				t.Fatal(err)
			}
			if w == gathered {
				if err := w.endRowGroup(); err != nil { // four row groups
					t.Fatal(err)
				}
			} else {
				// The same row groups, each write as it comes.
				w.endRowGroupDirect(t)
			}
		}
		if w == gathered {
			if err := w.close(); err != nil {
				t.Fatal(err)
			}
		} else {
			w.closeDirect(t)
		}
	}
	if !bytes.Equal(g.Bytes(), d.Bytes()) {
		t.Fatalf("gathered file of %d bytes differs from the one written as it came (%d bytes)", g.Len(), d.Len())
	}
	if gathered.off != int64(g.Len()) {
		t.Errorf("offset %d, file %d bytes", gathered.off, g.Len())
	}
	if max := 4*(1+g.Len()/(4*writeBufSize)) + 8; g.writes > max {
		t.Errorf("%d writes for %d bytes in 4 row groups, want at most %d", g.writes, g.Len(), max)
	}
	t.Logf("%d bytes: %d writes gathered, %d as they came", g.Len(), g.writes, d.writes)
}

// endRowGroupDirect and closeDirect write without gathering: each piece
// as put gives it.
func (w *fileWriter) endRowGroupDirect(t *testing.T) {
	w.wbuf = &noGather
	defer func() { w.wbuf = nil }()
	if err := w.endRowGroup(); err != nil {
		t.Fatal(err)
	}
}

func (w *fileWriter) closeDirect(t *testing.T) {
	w.wbuf = &noGather
	defer func() { w.wbuf = nil }()
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
}

// noGather is a gathering buffer of no room: put writes every piece.
var noGather = make([]byte, 0)
