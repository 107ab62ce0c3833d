package dedupe

import (
	"math/bits"
	"unsafe"

	"github.com/zeebo/xxh3"

	"github.com/sluicedata/sluice/internal/hugemem"
)

// entry is one key hash and the Kafka time it was seen at.
type entry struct {
	h  xxh3.Uint128
	ms int64
}

// window is the set of key hashes seen, in arrival order, in about 32
// bytes an entry (a Go map of the same with an eviction list took ~90):
//
//   - ring holds the entries in arrival order, a circular buffer indexed
//     by sequence number (seq & (len(ring)-1)) from head to tail;
//   - index is an open-addressing (linear probing) table of ring slots
//     plus one (0 is empty), twice the ring's size, keyed by the hash.
//     The bits of an index value above the slot hold a tag, bits of the
//     hash, so that a probe reads the ring (memory far from the index)
//     only when the tag matches: almost only for the entry it looks for.
//
// An entry whose key was seen again after its window passed stays in the
// ring but no longer in the index (stale); evicting it changes nothing.
// Both arrays grow and shrink together by powers of two, so memory follows
// the number of live entries. From 64 KiB of slots on they live outside
// the Go heap: up to 1 MiB in one block of a hugemem class (blocks of a
// size shared by the windows of all partitions, given back when replaced
// or when the stage closes, and lent again to the next window that grows
// to that size), from a huge page on in a mapping of their own
// (hugemem.Big), unmapped when replaced or when the stage closes.
type window struct {
	ring       []entry
	head, tail uint64
	index      []uint32
	live       int
	shift      uint   // bits of an index value that hold slot+1
	tagBits    uint   // bits above them that hold the tag (32 - shift)
	slotMask   uint32 // (1 << shift) - 1
	// big holds ring and index when they take a huge page or more:
	// mapped outside the Go heap, so that a window's growth (the arrays
	// double, the old ones are dropped) is neither garbage for the
	// collector nor a page fault per 4 KiB first touched (~11 µs each on
	// the virtual machines measured); nil: both arrays are in the heap.
	big *hugemem.Big
	// blk holds ring and index when they take from 64 KiB to 1 MiB: a
	// block of cls. At 64 partitions each window doubled in the heap up to
	// 512 KiB, 64 MB of garbage a 1M-event run, touched 4 KiB at a time.
	blk []byte
	cls *hugemem.Class
}

// minClassBytes: window arrays (ring and index) from this size (2,048
// slots) to a region's half are a hugemem class's block; a region or
// more is hugemem.Big's.
const minClassBytes = 64 << 10

const minWindowCap = 1 << 10

func newWindow() *window {
	w := &window{}
	w.alloc(minWindowCap)
	return w
}

// slotBytes is the memory of a slot: its entry and two index values.
const slotBytes = int(unsafe.Sizeof(entry{})) + 2*4

// alloc gives w an empty ring of n slots (a power of two) and its index,
// outside the heap from 64 KiB of slots on (a class's block, or mapped
// whole from a huge page's worth on); the arrays it had are the caller's
// to release.
func (w *window) alloc(n int) {
	size := n * slotBytes
	var mem []byte
	w.big, w.blk, w.cls = nil, nil, nil
	switch {
	case size >= hugemem.RegionSize:
		if w.big = hugemem.MapBig(size); w.big != nil {
			mem = w.big.Bytes()
		}
	case size >= minClassBytes:
		w.cls = hugemem.ClassOf(size)
		w.blk = w.cls.Get()
		mem = w.blk
	}
	if mem != nil {
		ringBytes := n * int(unsafe.Sizeof(entry{}))
		w.ring = unsafe.Slice((*entry)(unsafe.Pointer(&mem[0])), n)
		w.index = unsafe.Slice((*uint32)(unsafe.Pointer(&mem[ringBytes])), 2*n)
		if w.cls != nil {
			// A reused block holds a past window's index (0 is empty; a
			// Big is mapped zeroed); the ring is read only where the
			// index points.
			clear(w.index)
		}
	} else {
		w.ring, w.index = make([]entry, n), make([]uint32, 2*n)
	}
	w.shift = uint(bits.Len(uint(n))) // slot+1 <= n
	w.tagBits = 32 - min(w.shift, 32)
	w.slotMask = uint32(1<<w.shift - 1)
}

func (w *window) slot(seq uint64) uint32 { return uint32(seq & uint64(len(w.ring)-1)) }

// tag is the tag of h in an index value.
func (w *window) tag(h xxh3.Uint128) uint32 {
	if w.tagBits == 0 {
		return 0
	}
	return uint32(h.Hi>>(64-w.tagBits)) << w.shift
}

// at is the ring slot of index value v (not 0).
func (w *window) at(v uint32) uint32 { return v&w.slotMask - 1 }

// find returns the index position of h, or the empty position where it
// would go.
func (w *window) find(h xxh3.Uint128) (int, bool) {
	mask := len(w.index) - 1
	i := int(h.Lo) & mask
	tag := w.tag(h)
	for {
		v := w.index[i]
		if v == 0 {
			return i, false
		}
		if v&^w.slotMask == tag && w.ring[w.at(v)].h == h {
			return i, true
		}
		i = (i + 1) & mask
	}
}

// get returns the time h was recorded at.
func (w *window) get(h xxh3.Uint128) (int64, bool) {
	i, ok := w.find(h)
	if !ok {
		return 0, false
	}
	return w.ring[w.at(w.index[i])].ms, true
}

// put records h at ms as the newest entry, replacing an older record of h
// (which goes stale). It reports whether h was new.
func (w *window) put(h xxh3.Uint128, ms int64) bool {
	if w.tail-w.head == uint64(len(w.ring)) {
		w.resize(2 * len(w.ring))
	}
	s := w.slot(w.tail)
	w.ring[s] = entry{h, ms}
	w.tail++
	i, ok := w.find(h)
	w.index[i] = w.tag(h) | (s + 1)
	if !ok {
		w.live++
	}
	return !ok
}

// oldest returns the oldest entry; the ring must not be empty.
func (w *window) oldest() entry { return w.ring[w.slot(w.head)] }

func (w *window) empty() bool { return w.head == w.tail }

// pop drops the oldest entry and reports whether it was live.
func (w *window) pop() bool {
	s := w.slot(w.head)
	e := w.ring[s]
	w.head++
	i, ok := w.find(e.h)
	if !ok || w.at(w.index[i]) != s {
		return false
	}
	w.remove(i)
	w.live--
	if len(w.ring) > minWindowCap && w.tail-w.head < uint64(len(w.ring)/4) {
		w.resize(len(w.ring) / 2)
	}
	return true
}

// remove empties index position i, shifting later entries of its probe
// run back so that every key stays reachable from its home position.
func (w *window) remove(i int) {
	mask := len(w.index) - 1
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		v := w.index[j]
		if v == 0 {
			break
		}
		home := int(w.ring[w.at(v)].h.Lo) & mask
		// The entry at j may move to i unless its home lies cyclically
		// in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			w.index[i] = v
			i = j
		}
	}
	w.index[i] = 0
}

// resize moves the live entries, in order, into a ring of n slots (a
// power of two, at least the live count) and rebuilds the index; stale
// entries are dropped on the way.
func (w *window) resize(n int) {
	prev := *w
	w.alloc(n)
	w.head, w.tail, w.live = 0, 0, 0
	for seq := prev.head; seq != prev.tail; seq++ {
		s := prev.slot(seq)
		e := prev.ring[s]
		if i, ok := prev.find(e.h); !ok || prev.at(prev.index[i]) != s {
			continue
		}
		ns := w.slot(w.tail)
		w.ring[ns] = e
		j, _ := w.find(e.h)
		w.index[j] = w.tag(e.h) | (ns + 1)
		w.tail++
		w.live++
	}
	prev.release()
}

// release gives back the arrays held outside the heap; w is not used
// after (resize's copy of the window before, or free's).
func (w *window) release() {
	w.big.Free()
	if w.cls != nil {
		w.cls.Put(w.blk)
	}
	w.ring, w.index, w.big, w.blk, w.cls = nil, nil, nil, nil, nil
}

// free gives the arrays back and leaves w empty, at its least size.
func (w *window) free() {
	prev := *w
	*w = window{}
	w.alloc(minWindowCap)
	prev.release()
}

// bytes is the memory the window holds.
func (w *window) bytes() int64 { return int64(len(w.ring))*24 + int64(len(w.index))*4 }
