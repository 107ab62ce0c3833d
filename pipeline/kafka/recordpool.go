package kafka

import (
	"bytes"
	"math/bits"
	"runtime/debug"
	"sync"
	"unsafe"

	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kgo"
)

// recordPool lends the Kafka client the buffers that fetched batches are
// decompressed into and the Record slices they are decoded into (kgo's
// PoolDecompressBytes and PoolRecords). Without it every fetched byte and
// every Record is a new allocation: 0.85 KiB per event of the reference
// workload, 42% of all bytes the process allocated.
//
// The contract that makes it safe: a worker calls Record.Recycle on each
// record only after the sink has copied what it keeps (PartitionSink.Write
// copies everything), and nothing keeps Event.Raw or a string that aliases
// it past the batch. A record never recycled (its partition was lost) is
// simply left to the garbage collector.
//
// Both pools keep their slices in power-of-two size classes, so that a
// batch gets a buffer that fits (a snappy batch says its decoded size).
// The idle slices are a free list bounded by maxIdle bytes (less under a
// low memory limit: idleBound), not a
// sync.Pool: under a memory limit the collector runs several times a
// second and empties a sync.Pool each time, and the fetch buffers were
// allocated again (a quarter of the bytes the process allocated in a
// 256 MiB container). A slice put back over the bound takes the place of
// idle slices of the class that holds the most idle bytes (or, if that is
// its own class, goes to the collector): with many partitions a fetch
// holds batches of many sizes, and when a returning slice was simply
// dropped the bound filled with the classes that came back first while
// the others were allocated anew for 44% of the fetched batches (tracker
// workload, 64 partitions).
//
// The client zeroes a buffer up to its capacity before it puts it back
// (4% of the CPU when buffers were lent whole). A snappy batch says its
// decoded size, so its buffer is lent with exactly that capacity and the
// rest of the array is restored when it comes back (lent).
type recordPool struct {
	mu    sync.Mutex
	idle  int64                       // bytes of the slices in bytes and recs
	bytes [poolClasses][][]byte       // cap in [2^(minClass+i), 2^(minClass+i+1))
	recs  [poolClasses][][]kgo.Record // same classes by length
	// held is the idle bytes of each class: bytes' (0) and recs' (1).
	held [2][poolClasses]int64
	// bound is the most idle bytes kept: idleBound of the Go runtime's
	// memory limit, read at the first give (0: not read yet).
	bound int64
	// lent maps the array of each buffer lent with less than its
	// capacity to that capacity, in two generations: when lent[0] holds
	// maxLent entries it becomes lent[1] and the one before is dropped.
	// A buffer never put back (its partition was lost) is so forgotten
	// after two generations; one that comes back after that is kept at
	// the capacity it was lent with, which its array holds.
	lent [2]map[*byte]int
}

const (
	minClass    = 6 // 64 records / bytes
	poolClasses = 22
	// maxIdle bounds the bytes the pool keeps between a Put and a Get.
	// What is in flight (the client's buffered fetch of up to 4 MiB
	// compressed, the polls queued and being processed per worker) peaked
	// at about 50 MB decompressed at 8 partitions, and it swings by more
	// than 32 MiB: at that bound 17% of the fetched batches (tracker, 8
	// partitions, 256 MiB budget) got a new buffer, dropped again when
	// the swing came back. Idle slices are live heap the collector's
	// headroom loses, but pointer-free, and every slice kept is one not
	// allocated: at 64 MiB the process allocated 406 instead of 603 bytes
	// per event in 256 MiB and ran the collector 14 times instead of 13
	// (4 instead of 6 unconstrained). (With idle slices dropped whenever
	// the bound was reached, 64 MiB had run the collector more often.)
	maxIdle = 64 << 20
	// spareClasses: a Get takes a slice up to 2^spareClasses times the
	// size it asked for before it allocates one.
	spareClasses = 2
	// maxLent bounds a generation of recordPool.lent (16 bytes of map
	// per entry), above the batches in flight: with 64 partitions a
	// fetch carries batches down to a record each, and over a thousand
	// were in flight. A clear of one map of 1,024 sent in-flight buffers
	// back at their lent size, to smaller classes, and batches of their
	// own class were allocated anew.
	maxLent = 8192
)

var recordSize = int64(unsafe.Sizeof(kgo.Record{}))

var (
	_ kgo.PoolDecompressBytes = (*recordPool)(nil)
	_ kgo.PoolRecords         = (*recordPool)(nil)
)

// class is the smallest class whose every slice holds n; ok false past the
// largest class.
func class(n int) (int, bool) {
	c := max(bits.Len(uint(max(n, 1)-1))-minClass, 0)
	return c, c < poolClasses
}

// classOf is the class a slice of capacity n goes back to (its
// capacity is at least the class's size).
func classOf(n int) (int, bool) {
	c := bits.Len(uint(n)) - 1 - minClass
	return c, c >= 0 && c < poolClasses
}

// GetDecompressBytes implements kgo.PoolDecompressBytes. Only the capacity
// matters; a buffer too small is grown by the client and the grown one is
// put back.
func (p *recordPool) GetDecompressBytes(compressed []byte, codec kgo.CompressionCodecType) []byte {
	need, exact := 4*len(compressed), false
	if codec == kgo.CodecSnappy && !bytes.HasPrefix(compressed, xerialPrefix) {
		if n, err := s2.DecodedLen(compressed); err == nil {
			need, exact = n, true
		}
	}
	c, ok := class(need)
	if !ok {
		return nil
	}
	b := take(p, p.bytes[:], kindBytes, c, 1)
	if b == nil {
		b = make([]byte, 0, 1<<(c+minClass))
	}
	if !exact || cap(b) == need || need == 0 {
		return b
	}
	p.mu.Lock()
	if len(p.lent[0]) >= maxLent {
		p.lent[1], p.lent[0] = p.lent[0], p.lent[1]
		clear(p.lent[0])
	}
	if p.lent[0] == nil {
		p.lent[0] = make(map[*byte]int)
	}
	p.lent[0][unsafe.SliceData(b)] = cap(b)
	p.mu.Unlock()
	return b[:0:need]
}

// xerialPrefix starts a snappy batch framed by the Java client's xerial
// format, whose decoded size is not in its header.
var xerialPrefix = []byte{130, 83, 78, 65, 80, 80, 89, 0}

// PutDecompressBytes implements kgo.PoolDecompressBytes.
func (p *recordPool) PutDecompressBytes(b []byte) {
	if cap(b) == 0 {
		return
	}
	p.mu.Lock()
	a := unsafe.SliceData(b)
	for _, m := range p.lent {
		if n, ok := m[a]; ok {
			delete(m, a)
			b = unsafe.Slice(a, n) // the array it was taken from
			break
		}
	}
	p.mu.Unlock()
	if c, ok := classOf(cap(b)); ok {
		give(p, p.bytes[:], kindBytes, c, b[:0], 1)
	}
}

// GetRecords implements kgo.PoolRecords.
func (p *recordPool) GetRecords(n int) []kgo.Record {
	c, ok := class(n)
	if !ok {
		return make([]kgo.Record, 0, n)
	}
	if r := take(p, p.recs[:], kindRecs, c, recordSize); r != nil {
		return r
	}
	return make([]kgo.Record, 0, 1<<(c+minClass))
}

// PutRecords implements kgo.PoolRecords.
func (p *recordPool) PutRecords(r []kgo.Record) {
	if c, ok := classOf(cap(r)); ok {
		give(p, p.recs[:], kindRecs, c, r[:0], recordSize)
	}
}

// take pops an idle slice of class c, or else of one of the next
// spareClasses larger classes (nil: none); size is the bytes of one
// element. Batches differ in size (a producer's linger and batch limit
// cut them), and a buffer of the exact class was idle for only half of
// the fetches of the reference workload.
func take[T any](p *recordPool, classes [][][]T, kind, c int, size int64) []T {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := c; i < min(c+1+spareClasses, len(classes)); i++ {
		if s, ok := pop(p, classes, kind, i, size); ok {
			return s
		}
	}
	return nil
}

// pop removes the last idle slice of class c (p.mu held).
func pop[T any](p *recordPool, classes [][][]T, kind, c int, size int64) ([]T, bool) {
	l := classes[c]
	if len(l) == 0 {
		return nil, false
	}
	s := l[len(l)-1]
	l[len(l)-1] = nil
	classes[c] = l[:len(l)-1]
	n := int64(cap(s)) * size
	p.idle -= n
	p.held[kind][c] -= n
	return s, true
}

// The kinds of slices, indexes of recordPool.held.
const (
	kindBytes = iota
	kindRecs
)

// give keeps an empty slice of class c for a later take. Past p.bound,
// idle slices of the class holding the most idle bytes make room for it;
// if that is its own class, s is dropped instead.
func give[T any](p *recordPool, classes [][][]T, kind, c int, s []T, size int64) {
	n := int64(cap(s)) * size
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bound == 0 {
		p.bound = idleBound(debug.SetMemoryLimit(-1))
	}
	if n > p.bound {
		return // would not fit even alone: evict nothing for it
	}
	for p.idle+n > p.bound {
		k, v := p.fullest()
		if k == kind && v == c || p.held[k][v] == 0 {
			return
		}
		// Every pop frees at least one slice: the loop ends.
		if k == kindBytes {
			pop(p, p.bytes[:], k, v, 1)
		} else {
			pop(p, p.recs[:], k, v, recordSize)
		}
	}
	p.idle += n
	p.held[kind][c] += n
	classes[c] = append(classes[c], s)
}

// idleBound is the pool's bound under a Go memory limit of limit bytes:
// maxIdle, or a third of a lower limit (a 256 MiB container's soft limit of
// 204.8 MiB keeps maxIdle; a smaller container keeps less).
func idleBound(limit int64) int64 { return min(maxIdle, limit/3) }

// fullest is the kind and class holding the most idle bytes (p.mu held).
func (p *recordPool) fullest() (kind, class int) {
	for k := range p.held {
		for c, n := range p.held[k] {
			if n > p.held[kind][class] {
				kind, class = k, c
			}
		}
	}
	return kind, class
}
