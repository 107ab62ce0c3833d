// Package hugemem lends byte blocks of a few fixed sizes from memory
// outside the Go heap that the kernel may back with transparent huge pages.
//
// Why: the Parquet sink holds each open row group's encoded pages until
// the row group ends, up to sink.memory_limit in all. In the Go heap that
// memory is touched page by page as it grows, and a first touch of a
// 4 KiB page is a page fault: about 10 µs each on the virtual machines
// sluice was measured on (400 MiB touched: 1.06 s of CPU; advised for
// huge pages, 0.03 s). At 64 partitions page faults were a sixth of the
// process's CPU, a third of them the open row groups'. Regions here are
// 2 MiB, aligned, advised MADV_HUGEPAGE (effective when
// /sys/kernel/mm/transparent_hugepage/enabled is "always" or "madvise";
// otherwise they are ordinary pages, as before).
//
// Contract: Get returns a block of exactly the class's size, zeroed on
// first use only (a reused block holds what was last written there, by a
// user of its class or of another that had its region before); each
// block goes back with Put exactly once, and nothing may use it after.
// The garbage collector neither scans nor counts these blocks: they hold
// bytes only. The Go memory limit (GOMEMLIMIT, or the one sluice derives)
// counts them instead: each region backed lowers the runtime's limit by
// its size and each region given back raises it again (down to half the
// limit at most), so that the heap and the regions together stay within
// it, as the heap alone did when the blocks were in it. Memory: what is
// lent, plus at most idleCap() empty regions kept backed for any class to
// carve again; a region emptied beyond that is given back to the kernel
// (MADV_DONTNEED; its addresses stay mapped and are the next to be
// carved after the backed ones, so a block used after Put reads zeros
// instead of crashing). Safe for concurrent use.
//
// ClassOf hands out one class per block size, shared by all packages, so
// that partly lent regions of a size serve every user of it.
//
// Big is the same memory for one array of a region or more (a
// deduplication window): mapped whole by MapBig, unmapped by Free or, if
// its owner drops it, by a cleanup; counted in the memory limit too.
package hugemem

import (
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"runtime/debug"
	"sync"
	"unsafe"
)

// RegionSize is the size of a region: one huge page on x86-64 and arm64.
const RegionSize = 2 << 20

// Empty regions of all classes are kept mapped and backed for reuse by
// any class, up to a thirty-second of the Go memory limit (as its owner
// set it: 40 MiB under sluice's limit without a container, the minimum
// in a 256 MiB one), from MinIdleRegions to MaxIdleRegions: an open row
// group ends, its blocks come back, and the next one takes them again
// without a fault. A region given back to the kernel costs a huge page's
// fault and zeroing when it is next lent (~3.4 ms a file of 15,625 rows
// when only 4 were kept, each in its class: a file's blocks span more
// classes than that).
const (
	MinIdleRegions = 4
	MaxIdleRegions = 32
)

// idleCap is how many empty regions are kept backed.
func idleCap() int {
	limit.Lock()
	defer limit.Unlock()
	base := limit.base
	if cur := debug.SetMemoryLimit(-1); !limit.set || cur != limit.last {
		base = cur // set by its owner since backed last set it
	}
	return int(min(max(base/32/RegionSize, MinIdleRegions), MaxIdleRegions))
}

// Class lends blocks of one size (a power of two from 4 KiB to 2 MiB).
type Class struct {
	size int
	mu   sync.Mutex
	// partial: regions with free blocks and some lent. A full region is
	// on no list; an empty one leaves the class for the spares.
	partial []*region
	regions map[uintptr]*region // regions with blocks lent, by base address
}

type region struct {
	base  uintptr
	mem   []byte
	free  []int32 // indexes of free blocks
	lent  int
	where int // index in partial, or -1
}

// spare holds the empty regions of all classes, for any class to carve
// again: up to idleCap() backed, the rest given back to the kernel with
// their addresses kept mapped (a block used after Put reads zeros).
var spare struct {
	sync.Mutex
	backed, released [][]byte
}

// putSpare takes an emptied region's memory.
func putSpare(mem []byte) {
	spare.Lock()
	defer spare.Unlock()
	if len(spare.backed) < idleCap() {
		spare.backed = append(spare.backed, mem)
		return
	}
	release(mem)
	backed(-RegionSize)
	spare.released = append(spare.released, mem)
}

// takeSpare returns a spare region's memory, a backed one first, or nil.
func takeSpare() []byte {
	spare.Lock()
	defer spare.Unlock()
	if n := len(spare.backed); n > 0 {
		mem := spare.backed[n-1]
		spare.backed = spare.backed[:n-1]
		return mem
	}
	if n := len(spare.released); n > 0 {
		mem := spare.released[n-1]
		spare.released = spare.released[:n-1]
		backed(RegionSize)
		return mem
	}
	return nil
}

// Spare returns the empty regions kept: backed, and given back to the
// kernel.
func Spare() (backed, released int) {
	spare.Lock()
	defer spare.Unlock()
	return len(spare.backed), len(spare.released)
}

// The classes ClassOf shares, one for each block size from 4 KiB to a
// region.
const (
	minClassShift = 12
	regionShift   = 21
)

var classes = func() (c [regionShift - minClassShift + 1]*Class) {
	for i := range c {
		c[i] = NewClass(1 << (minClassShift + i))
	}
	return c
}()

// ClassOf returns the class of the smallest blocks that hold n bytes (4
// KiB at least), one per size shared by all its users, or nil when n is
// more than a region.
func ClassOf(n int) *Class {
	if n > RegionSize {
		return nil
	}
	return classes[max(bits.Len(uint(n-1)), minClassShift)-minClassShift]
}

// Usage sums the Stats of ClassOf's classes of blocks from lo to hi bytes.
func Usage(lo, hi int) Stats {
	var s Stats
	for _, c := range classes {
		if c.size >= lo && c.size <= hi {
			st := c.Stats()
			s.Regions += st.Regions
			s.Lent += st.Lent
		}
	}
	return s
}

// NewClass returns a class of blocks of size bytes (ClassOf's are shared;
// a class of its own shares only the spare regions).
func NewClass(size int) *Class {
	if size < 4096 || size > RegionSize || size&(size-1) != 0 {
		panic(fmt.Sprintf("hugemem: block size %d is not a power of two in [4 KiB, 2 MiB]", size))
	}
	return &Class{size: size, regions: make(map[uintptr]*region)}
}

// Size is the class's block size.
func (c *Class) Size() int { return c.size }

// Get lends a block.
func (c *Class) Get() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var r *region
	if len(c.partial) > 0 {
		r = c.partial[len(c.partial)-1]
	} else {
		mem := takeSpare()
		if mem == nil {
			var err error
			if mem, err = mapRegion(); err != nil {
				// No address space or mapping refused: the Go heap lends it.
				return make([]byte, c.size)
			}
			backed(RegionSize)
		}
		r = &region{base: uintptr(unsafe.Pointer(unsafe.SliceData(mem))), mem: mem}
		n := RegionSize / c.size
		r.free = make([]int32, n)
		for i := range r.free {
			r.free[i] = int32(n - 1 - i)
		}
		c.regions[r.base] = r
		c.push(r)
	}
	i := r.free[len(r.free)-1]
	r.free = r.free[:len(r.free)-1]
	r.lent++
	if len(r.free) == 0 {
		c.remove(r)
	}
	off := int(i) * c.size
	return r.mem[off : off+c.size : off+c.size]
}

// Put gives back a block Get lent (a block the Go heap lent is left to
// the collector).
func (c *Class) Put(b []byte) {
	if cap(b) != c.size {
		panic(fmt.Sprintf("hugemem: a block of %d bytes put back into the class of %d", cap(b), c.size))
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b[:1])))
	base := p &^ (RegionSize - 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.regions[base]
	if !ok {
		return
	}
	if len(r.free) == 0 {
		c.push(r) // was full
	}
	r.free = append(r.free, int32((p-base)/uintptr(c.size)))
	r.lent--
	if r.lent > 0 {
		return
	}
	c.remove(r)
	delete(c.regions, r.base)
	putSpare(r.mem)
}

// push puts r on the partial list.
func (c *Class) push(r *region) {
	r.where = len(c.partial)
	c.partial = append(c.partial, r)
}

// remove takes r off the partial list, if it is on it.
func (c *Class) remove(r *region) {
	l := c.partial
	if r.where < 0 || r.where >= len(l) || l[r.where] != r {
		return // full
	}
	last := l[len(l)-1]
	l[r.where], last.where = last, r.where
	c.partial = l[:len(l)-1]
	r.where = -1
}

// limit is the Go memory limit less the regions' bytes: base is the
// limit as set by its owner (math.MaxInt64: none), off the bytes taken
// off it, last what backed set.
var limit struct {
	sync.Mutex
	base, off, last int64
	set             bool
}

// backed records d bytes of regions backed (negative: given back) and
// sets the runtime's memory limit to the base limit less all of them,
// never below half of it. A limit found changed since backed last set it
// (sluice sets its own at start; a test may) is the new base.
func backed(d int64) {
	limit.Lock()
	defer limit.Unlock()
	limit.off += d
	if cur := debug.SetMemoryLimit(-1); !limit.set || cur != limit.last {
		limit.base, limit.set = cur, true
	}
	if limit.base == math.MaxInt64 {
		limit.last = limit.base
		return
	}
	limit.last = max(limit.base-limit.off, limit.base/2)
	debug.SetMemoryLimit(limit.last)
}

// Backed is the bytes of regions backed (lent or idle), which the Go
// memory limit is lowered by.
func Backed() int64 {
	limit.Lock()
	defer limit.Unlock()
	return limit.off
}

// Stats are a class's regions and blocks.
type Stats struct {
	Regions int // holding blocks lent (backed)
	Lent    int // blocks lent
}

// Stats returns the class's counts.
func (c *Class) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{Regions: len(c.regions)}
	for _, r := range c.regions {
		s.Lent += r.lent
	}
	return s
}

// Big is memory of one owner mapped whole, for arrays of a region or more
// (a deduplication window): MapBig maps it, advised for huge pages, and
// Free unmaps it. The Go memory limit counts it like regions. Its bytes
// must hold no Go pointers (the collector does not scan them).
type Big struct {
	mu      sync.Mutex
	mem     []byte // the aligned, usable bytes; nil once freed
	raw     []byte // the whole mapping
	size    int    // bytes counted against the Go memory limit
	cleanup runtime.Cleanup
}

// MapBig maps n bytes (rounded up to whole regions) zeroed, or returns
// nil if n is under a region or the mapping fails (the caller then uses
// the Go heap). A Big that becomes unreachable without Free is unmapped
// by a cleanup.
func MapBig(n int) *Big {
	if n < RegionSize {
		return nil
	}
	size := (n + RegionSize - 1) &^ (RegionSize - 1)
	raw, mem, err := mapAligned(size)
	if err != nil {
		return nil
	}
	backed(int64(size))
	b := &Big{mem: mem[:n:n], raw: raw, size: size}
	b.cleanup = runtime.AddCleanup(b, func(raw []byte) { unmapBig(raw, size) }, raw)
	return b
}

// Bytes are the n bytes MapBig mapped; nil after Free.
func (b *Big) Bytes() []byte { return b.mem }

// Free unmaps the bytes; nothing may use them after. Free of a nil Big,
// or a second Free, does nothing.
func (b *Big) Free() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.raw == nil {
		return
	}
	b.cleanup.Stop()
	unmapBig(b.raw, b.size)
	b.raw, b.mem = nil, nil
}

func unmapBig(raw []byte, size int) {
	if unmap(raw) == nil {
		backed(-int64(size))
	}
}
