package parquet

import (
	"encoding/binary"
	"math"
	"math/bits"
	"strings"
	"unsafe"

	"github.com/parquet-go/parquet-go/format"

	"github.com/sluicedata/sluice/internal/hugemem"
)

// This file encodes column values into Parquet pages: PLAIN values, the
// RLE/bit-packed hybrid for definition levels and dictionary indexes,
// and the statistics of each page. It knows nothing of files (file.go).

// kind is a column's physical type.
type kind uint8

const (
	kindBytes kind = iota // BYTE_ARRAY
	kindInt32
	kindInt64
	kindDouble
	kindBool
)

// Page limits: a column's open page is encoded once its values take
// pageBufferSize bytes (dictionary indexes count 2 bytes each) or it
// holds maxPageValues values.
const (
	pageBufferSize = 32 << 10
	maxPageValues  = 8192
)

// maxStatBytes: a page's or column chunk's min and max values are written
// exactly when both are at most this long, else left out (a truncated
// bound in the statistics would be read as exact). The column index
// carries truncated bounds (columnIndexBytes), which its readers expect.
const (
	maxStatBytes     = 256
	columnIndexBytes = 16
)

// stats are the bounds and null count of values. Bounds of BYTE_ARRAY
// columns are copies of the values (compared as unsigned bytes, Parquet's
// order for strings and binary); of numbers, the numbers (signed; doubles
// without NaN); of booleans, 0 and 1.
type stats struct {
	has        bool
	min, max   []byte
	imin, imax int64
	fmin, fmax float64
	nulls      int64
}

func (s *stats) reset() {
	s.has, s.nulls = false, 0
	s.min, s.max = s.min[:0], s.max[:0]
}

func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func (s *stats) str(v string) {
	switch {
	case !s.has:
		s.has = true
		s.min = append(s.min[:0], v...)
		s.max = append(s.max[:0], v...)
	case v < view(s.min):
		s.min = append(s.min[:0], v...)
	case v > view(s.max):
		s.max = append(s.max[:0], v...)
	}
}

func (s *stats) int(v int64) {
	if !s.has {
		s.has, s.imin, s.imax = true, v, v
		return
	}
	s.imin, s.imax = min(s.imin, v), max(s.imax, v)
}

func (s *stats) float(v float64) {
	if v != v { // NaN orders nowhere: not a bound
		return
	}
	if !s.has {
		s.has, s.fmin, s.fmax = true, v, v
		return
	}
	s.fmin, s.fmax = min(s.fmin, v), max(s.fmax, v)
}

// merge adds the bounds and nulls of o (a page) to s (its chunk).
func (s *stats) merge(o *stats, k kind) {
	s.nulls += o.nulls
	if !o.has {
		return
	}
	switch k {
	case kindBytes:
		s.str(view(o.min))
		s.str(view(o.max))
	case kindDouble:
		s.float(o.fmin)
		s.float(o.fmax)
	default:
		s.int(o.imin)
		s.int(o.imax)
	}
}

// bounds are the PLAIN encodings of the min and max (without the length
// of a BYTE_ARRAY; "" may be nil), in buf for numbers; nil when !s.has.
func (s *stats) bounds(k kind, buf []byte) (lo, hi []byte) {
	if !s.has {
		return nil, nil
	}
	buf = buf[:0]
	switch k {
	case kindBytes:
		return s.min, s.max
	case kindInt32:
		buf = binary.LittleEndian.AppendUint32(buf, uint32(s.imin))
		buf = binary.LittleEndian.AppendUint32(buf, uint32(s.imax))
		return buf[:4:4], buf[4:8]
	case kindInt64:
		buf = binary.LittleEndian.AppendUint64(buf, uint64(s.imin))
		buf = binary.LittleEndian.AppendUint64(buf, uint64(s.imax))
		return buf[:8:8], buf[8:16]
	case kindDouble:
		// Parquet's rule for zeros: a min of ±0 is written -0, a max +0.
		lo, hi := s.fmin, s.fmax
		if lo == 0 {
			lo = math.Copysign(0, -1)
		}
		if hi == 0 {
			hi = 0
		}
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(lo))
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(hi))
		return buf[:8:8], buf[8:16]
	default: // kindBool
		buf = append(buf, byte(s.imin), byte(s.imax))
		return buf[:1:1], buf[1:2]
	}
}

// statistics is s as Parquet statistics: the null count, and the bounds
// when they are short enough to write exactly. Unless keep, the bounds
// are s's and buf's bytes: valid until either changes.
func (s *stats) statistics(k kind, buf []byte, keep bool) format.Statistics {
	st := format.Statistics{NullCount: s.nulls}
	lo, hi := s.bounds(k, buf)
	if s.has && len(lo) <= maxStatBytes && len(hi) <= maxStatBytes {
		if lo == nil {
			lo = []byte{}
		}
		if keep {
			lo, hi = append([]byte{}, lo...), append([]byte{}, hi...)
		}
		st.MinValue, st.MaxValue = lo, hi
	}
	return st
}

// truncMin is a lower bound of v of at most n bytes: a prefix, cut where
// no UTF-8 sequence is split (a prefix orders before v).
func truncMin(v []byte, n int) []byte {
	if len(v) <= n {
		return v
	}
	for n > 0 && v[n]&0xc0 == 0x80 {
		n--
	}
	return v[:n]
}

// truncMax is an upper bound of v of at most n bytes: a prefix whose last
// byte, an ASCII character below DEL, is incremented (so it orders after
// v and stays valid UTF-8); v itself when there is no such prefix.
func truncMax(v []byte, n int) []byte {
	if len(v) <= n {
		return v
	}
	for i := n - 1; i >= 0; i-- {
		if v[i] < 0x7f {
			out := append([]byte(nil), v[:i+1]...)
			out[i]++
			return out
		}
	}
	return v
}

// bitWidth is the bits needed for values 0..n-1 (at least 1).
func bitWidth(n int) uint {
	if n <= 2 {
		return 1
	}
	return uint(bits.Len(uint(n - 1)))
}

// appendHybrid appends v (values below 1<<w) in the RLE/bit-packed hybrid
// encoding: runs of one value as RLE runs, the rest bit-packed in groups
// of eight (the last group padded with zeros: readers stop at the page's
// value count).
func appendHybrid[T uint16 | int32](dst []byte, v []T, w uint) []byte {
	runAt := func(i int) int {
		j := i + 1
		for j < len(v) && v[j] == v[i] {
			j++
		}
		return j - i
	}
	return appendRuns(dst, len(v), w, runAt, func(dst []byte, i int) []byte {
		x := uint32(v[i])
		for b := uint(0); b < w; b += 8 {
			dst = append(dst, byte(x>>b))
		}
		return dst
	}, func(dst []byte, start, end int) []byte {
		var acc uint64
		var n uint
		for j := start; j < end; j++ {
			if j < len(v) {
				acc |= uint64(uint32(v[j])) << n
			}
			n += w
			for n >= 8 {
				dst = append(dst, byte(acc))
				acc >>= 8
				n -= 8
			}
		}
		return dst
	})
}

// appendRuns appends n values of width w in the hybrid encoding: a run
// of at least max(8, 64/w) equal values (or the last values, all equal)
// is an RLE run, and the values up to the next such run, eight at a
// time, a bit-packed one. runAt(i) is the length of the run of equal
// values at i; value(dst, i) appends value i as an RLE run's value;
// pack(dst, start, end) appends values [start, end) bit-packed (end a
// multiple of eight past start, those from n on as zeros).
func appendRuns(dst []byte, n int, w uint, runAt func(i int) int,
	value func(dst []byte, i int) []byte, pack func(dst []byte, start, end int) []byte) []byte {
	// A run shorter than this is cheaper left in a bit-packed run.
	minRun := max(8, 64/int(w))
	for i := 0; i < n; {
		if r := runAt(i); r >= minRun || i+r == n {
			dst = binary.AppendUvarint(dst, uint64(r)<<1)
			dst = value(dst, i)
			i += r
			continue
		}
		start, groups := i, 0
		for {
			i += 8
			groups++
			if i >= n || runAt(i) >= minRun {
				break
			}
		}
		dst = binary.AppendUvarint(dst, uint64(groups)<<1|1)
		dst = pack(dst, start, start+groups*8)
		i = min(i, n)
	}
	return dst
}

// packLevels appends levels (0 or 1 each) bit-packed, eight to a byte
// (the last byte padded with zeros).
func packLevels(dst []byte, v []byte) []byte {
	for len(v) >= 8 {
		// Byte k of x (0 or 1) is multiplied to bit 56+k; no two
		// products meet, so nothing carries into the top byte.
		x := binary.LittleEndian.Uint64(v)
		dst = append(dst, byte((x*0x0102040810204080)>>56))
		v = v[8:]
	}
	if len(v) > 0 {
		dst = appendBools(dst, v)
	}
	return dst
}

// appendBools appends v (0 or 1 each) as PLAIN booleans: bits, first value
// in the lowest bit.
func appendBools(dst []byte, v []byte) []byte {
	for i := 0; i < len(v); i += 8 {
		var b byte
		for j := i; j < min(i+8, len(v)); j++ {
			b |= v[j] << (j - i)
		}
		dst = append(dst, b)
	}
	return dst
}

// dictionary is a column's dictionary of one row group: its distinct
// values in PLAIN encoding (the dictionary page's body) and their indexes.
type dictionary struct {
	index map[string]int32
	plain []byte
	pos   []int32 // where value i starts in plain (after its length)
	// The value added last, for runs of one value.
	last    string
	lastIdx int32
	// recent remembers indexes by a quick hash of the value (its length
	// and outer bytes, quickSlot): a column's frequent values are found
	// without the map's hash of every byte and its probe. A hit is
	// compared by value, so a collision can only miss. Slots hold index+1
	// (0: empty).
	recent [recentSlots]uint16
	// seen[i] is the stamp of the page that last held value i.
	seen  []int32
	stamp int32
}

const (
	recentBits  = 8
	recentSlots = 1 << recentBits
)

// quickSlot is v's slot in recent: a hash of its length and of its first
// and last eight bytes (fewer for a shorter value).
func quickSlot(v string) int {
	b := unsafe.Slice(unsafe.StringData(v), len(v)) // read only
	n := len(b)
	var x uint64
	switch {
	case n >= 8:
		x = binary.LittleEndian.Uint64(b) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(b[n-8:]), 29)
	case n >= 4:
		x = uint64(binary.LittleEndian.Uint32(b))<<32 | uint64(binary.LittleEndian.Uint32(b[n-4:]))
	case n > 0:
		x = uint64(b[0])<<16 | uint64(b[n/2])<<8 | uint64(b[n-1])
	}
	x = (x ^ uint64(n)) * 0x9e3779b97f4a7c15
	return int(x >> (64 - recentBits))
}

func (d *dictionary) reset() {
	clear(d.index)
	d.recent = [recentSlots]uint16{}
	d.plain, d.pos, d.last = d.plain[:0], d.pos[:0], ""
	clear(d.seen)
	d.seen = d.seen[:0]
}

func (d *dictionary) value(i int32) string {
	p := d.pos[i]
	n := int32(binary.LittleEndian.Uint32(d.plain[p-4:]))
	return view(d.plain[p : p+n])
}

// lookup returns v's index, adding v unless that would take the
// dictionary past maxBytes (then ok is false).
func (d *dictionary) lookup(v string, maxBytes int) (idx int32, ok bool) {
	if len(d.pos) > 0 && v == d.last {
		return d.lastIdx, true
	}
	slot := &d.recent[quickSlot(v)]
	if i := int32(*slot) - 1; i >= 0 {
		if s := d.value(i); s == v {
			d.last, d.lastIdx = s, i
			return i, true
		}
	}
	idx, ok = d.index[v]
	if !ok {
		if len(d.plain)+4+len(v) > maxBytes {
			return 0, false
		}
		if d.index == nil {
			d.index = make(map[string]int32)
		}
		idx = int32(len(d.pos))
		d.plain = binary.LittleEndian.AppendUint32(d.plain, uint32(len(v)))
		d.pos = append(d.pos, int32(len(d.plain)))
		d.plain = append(d.plain, v...)
		d.seen = append(d.seen, 0)
		v = strings.Clone(v)
		d.index[v] = idx
	}
	*slot = uint16(idx + 1)
	d.last, d.lastIdx = d.value(idx), idx
	return idx, true
}

// pageStats adds to s the bounds of the distinct values of a page's
// indexes: each distinct value compared once.
func (d *dictionary) pageStats(idx []uint16, s *stats) {
	d.stamp++
	for _, i := range idx {
		if d.seen[i] != d.stamp {
			d.seen[i] = d.stamp
			s.str(d.value(int32(i)))
		}
	}
}

// A row group's encoded pages are held in blocks lent by hugemem, so that
// a writer between row groups holds none, a growing column chunk is never
// copied, and the memory of the open row groups (up to memory_limit) is
// backed by huge pages where the kernel allows: in the Go heap its first
// touch was a page fault per 4 KiB, over a tenth of the CPU of a run at
// 64 partitions. A chunk's blocks double from minBlock to maxBlock: a
// column of few bytes (all NULL, a dictionary's indexes) takes a small
// block.
const (
	minBlockShift = 12 // 4 KiB
	maxBlockShift = 16 // 64 KiB
)

func getBlock(shift int) []byte { return hugemem.ClassOf(1 << shift).Get() }

func putBlock(b []byte) { hugemem.ClassOf(cap(b)).Put(b[:cap(b)]) }

// blockBuf is bytes appended into pooled blocks.
type blockBuf struct {
	blocks [][]byte // each full but the last
	n      int      // bytes in all blocks
}

func (b *blockBuf) Len() int { return b.n }

func (b *blockBuf) append(p []byte) {
	for len(p) > 0 {
		k := len(b.blocks)
		if k == 0 || len(b.blocks[k-1]) == cap(b.blocks[k-1]) {
			b.blocks = append(b.blocks, getBlock(min(minBlockShift+k, maxBlockShift))[:0])
			k++
		}
		last := b.blocks[k-1]
		m := min(len(p), cap(last)-len(last))
		b.blocks[k-1] = append(last, p[:m]...)
		p, b.n = p[m:], b.n+m
	}
}

// writeTo gives the bytes to put, block by block.
func (b *blockBuf) writeTo(put func([]byte)) {
	for _, blk := range b.blocks {
		put(blk)
	}
}

// release gives the blocks back to their pools.
func (b *blockBuf) release() {
	for i, blk := range b.blocks {
		putBlock(blk)
		b.blocks[i] = nil
	}
	b.blocks, b.n = b.blocks[:0], 0
}

// DELTA_BINARY_PACKED: blocks of deltaBlock deltas in deltaMinis
// miniblocks of 32, each bit-packed at its own width above the block's
// least delta.
const (
	deltaBlock = 128
	deltaMinis = 4
	deltaMini  = deltaBlock / deltaMinis
)

// appendDelta appends the PLAIN values in vals (little-endian, 4 or 8
// bytes each: INT32 or INT64) in the DELTA_BINARY_PACKED encoding: the
// header (block size, miniblocks per block, value count, first value),
// then per block of deltas its least delta, its miniblocks' bit widths and
// the miniblocks. Deltas wrap at the values' width, as readers expect; a
// last miniblock is padded with zeros to 32 values, a last block's unused
// miniblocks have width 0 and no bytes.
func appendDelta(dst, vals []byte, size int) []byte {
	n := len(vals) / size
	shift := uint(64 - 8*size) // sign extension from the values' width
	value := func(i int) int64 {
		if size == 4 {
			return int64(int32(binary.LittleEndian.Uint32(vals[4*i:])))
		}
		return int64(binary.LittleEndian.Uint64(vals[8*i:]))
	}
	mask := ^uint64(0) >> shift
	dst = binary.AppendUvarint(dst, deltaBlock)
	dst = binary.AppendUvarint(dst, deltaMinis)
	dst = binary.AppendUvarint(dst, uint64(n))
	if n == 0 {
		return binary.AppendVarint(dst, 0)
	}
	dst = binary.AppendVarint(dst, value(0)) // zigzag ULEB128
	var deltas [deltaBlock]uint64
	prev := value(0)
	for i := 1; i < n; i += deltaBlock {
		m := min(deltaBlock, n-i)
		least := int64(0)
		for j := range m {
			v := value(i + j)
			d := int64(uint64(v-prev)<<shift) >> shift // wrapped at the width
			prev = v
			deltas[j] = uint64(d)
			if j == 0 || d < least {
				least = d
			}
		}
		dst = binary.AppendVarint(dst, least)
		widths := len(dst)
		dst = append(dst, 0, 0, 0, 0) // deltaMinis widths
		for k := 0; k*deltaMini < m; k++ {
			lo, hi := k*deltaMini, min((k+1)*deltaMini, m)
			var or uint64
			for j := lo; j < hi; j++ {
				deltas[j] = (deltas[j] - uint64(least)) & mask
				or |= deltas[j]
			}
			w := uint(bits.Len64(or))
			dst[widths+k] = byte(w)
			dst = packMini(dst, deltas[lo:hi], w)
		}
	}
	return dst
}

// packMini appends a miniblock: deltaMini values of w bits each (v, then
// zeros), least significant bit first; 4*w bytes.
func packMini(dst []byte, v []uint64, w uint) []byte {
	if w == 0 {
		return dst
	}
	var acc uint64 // n bits pending, n < 8 between values
	var n uint
	put := func(x uint64, w uint) { // w <= 56
		acc |= x << n
		for n += w; n >= 8; n -= 8 {
			dst = append(dst, byte(acc))
			acc >>= 8
		}
	}
	for j := range deltaMini {
		var x uint64
		if j < len(v) {
			x = v[j]
		}
		if w > 56 {
			put(x&(1<<32-1), 32)
			put(x>>32, w-32)
		} else {
			put(x, w)
		}
	}
	return dst // 32*w bits: whole bytes, nothing pending
}

// appendLevels appends the first n definition levels of a page, held as
// bits (bit i of defs is level i; the bits from n on are clear), in the
// RLE/bit-packed hybrid encoding at width 1 (appendRuns), a word at a
// time.
func appendLevels(dst []byte, defs []uint64, n int) []byte {
	level := func(i int) uint64 { return defs[i>>6] >> (i & 63) & 1 }
	runAt := func(i int) int {
		flip := -level(i) // all ones under a run of ones: their bits clear
		j := i
		for j < n {
			x := (defs[j>>6] ^ flip) >> (j & 63)
			left := 64 - j&63
			if z := bits.TrailingZeros64(x); z < left {
				j += z
				break
			}
			j += left
		}
		return min(j, n) - i
	}
	return appendRuns(dst, n, 1, runAt, func(dst []byte, i int) []byte {
		return append(dst, byte(level(i)))
	}, func(dst []byte, start, end int) []byte {
		// Eight levels a byte; those from n on are clear.
		for k := start; k < end; k += 8 {
			w, off := k>>6, k&63
			x := defs[w] >> off
			if off > 56 && w+1 < len(defs) {
				x |= defs[w+1] << (64 - off)
			}
			dst = append(dst, byte(x))
		}
		return dst
	})
}
