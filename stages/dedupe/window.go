package dedupe

import "github.com/zeebo/xxh3"

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
//
// An entry whose key was seen again after its window passed stays in the
// ring but no longer in the index (stale); evicting it changes nothing.
// Both arrays grow and shrink together by powers of two, so memory follows
// the number of live entries.
type window struct {
	ring       []entry
	head, tail uint64
	index      []uint32
	live       int
}

const minWindowCap = 1 << 10

func newWindow() *window {
	return &window{ring: make([]entry, minWindowCap), index: make([]uint32, 2*minWindowCap)}
}

func (w *window) slot(seq uint64) uint32 { return uint32(seq & uint64(len(w.ring)-1)) }

// find returns the index position of h, or the empty position where it
// would go.
func (w *window) find(h xxh3.Uint128) (int, bool) {
	mask := len(w.index) - 1
	i := int(h.Lo) & mask
	for {
		v := w.index[i]
		if v == 0 {
			return i, false
		}
		if w.ring[v-1].h == h {
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
	return w.ring[w.index[i]-1].ms, true
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
	w.index[i] = s + 1
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
	if !ok || w.index[i] != s+1 {
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
		home := int(w.ring[v-1].h.Lo) & mask
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
	w.ring, w.index = make([]entry, n), make([]uint32, 2*n)
	w.head, w.tail, w.live = 0, 0, 0
	for seq := prev.head; seq != prev.tail; seq++ {
		s := prev.slot(seq)
		e := prev.ring[s]
		if i, ok := prev.find(e.h); !ok || prev.index[i] != s+1 {
			continue
		}
		ns := w.slot(w.tail)
		w.ring[ns] = e
		j, _ := w.find(e.h)
		w.index[j] = ns + 1
		w.tail++
		w.live++
	}
}

// bytes is the memory the window holds.
func (w *window) bytes() int64 { return int64(len(w.ring))*24 + int64(len(w.index))*4 }
