package kafka

import (
	"bytes"
	"math/bits"
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
// They are free lists bounded in bytes, not sync.Pools: a sync.Pool is
// emptied by every garbage collection, and under a container's memory
// limit collections come often enough that most batches found it empty and
// allocated anew — more garbage, more collections.
type recordPool struct {
	bytes freeLists[byte]
	recs  freeLists[kgo.Record]
}

const (
	minClass    = 6 // 64 records / bytes
	poolClasses = 22
	// Idle bytes each pool keeps at most; what is put back past that is
	// left to the garbage collector.
	maxIdleBytes   = 32 << 20
	maxIdleRecords = 8 << 20
)

// freeLists are the idle slices of one pool by class.
type freeLists[T any] struct {
	mu   sync.Mutex
	free [poolClasses][][]T
	idle int64 // bytes held in free
}

func (f *freeLists[T]) get(c int) []T {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.free[c]
	if len(l) == 0 {
		return nil
	}
	s := l[len(l)-1]
	l[len(l)-1] = nil
	f.free[c] = l[:len(l)-1]
	f.idle -= int64(cap(s)) * int64(unsafe.Sizeof(*new(T)))
	return s[:0]
}

func (f *freeLists[T]) put(c int, s []T, maxIdle int64) {
	n := int64(cap(s)) * int64(unsafe.Sizeof(*new(T)))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.idle+n > maxIdle {
		return
	}
	f.free[c] = append(f.free[c], s)
	f.idle += n
}

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
	need := 4 * len(compressed)
	if codec == kgo.CodecSnappy && !bytes.HasPrefix(compressed, xerialPrefix) {
		if n, err := s2.DecodedLen(compressed); err == nil {
			need = n
		}
	}
	c, ok := class(need)
	if !ok {
		return nil
	}
	if b := p.bytes.get(c); b != nil {
		return b
	}
	return make([]byte, 0, 1<<(c+minClass))
}

// xerialPrefix starts a snappy batch framed by the Java client's xerial
// format, whose decoded size is not in its header.
var xerialPrefix = []byte{130, 83, 78, 65, 80, 80, 89, 0}

// PutDecompressBytes implements kgo.PoolDecompressBytes.
func (p *recordPool) PutDecompressBytes(b []byte) {
	if c, ok := classOf(cap(b)); ok {
		p.bytes.put(c, b, maxIdleBytes)
	}
}

// GetRecords implements kgo.PoolRecords.
func (p *recordPool) GetRecords(n int) []kgo.Record {
	c, ok := class(n)
	if !ok {
		return make([]kgo.Record, 0, n)
	}
	if r := p.recs.get(c); r != nil {
		return r
	}
	return make([]kgo.Record, 0, 1<<(c+minClass))
}

// PutRecords implements kgo.PoolRecords.
func (p *recordPool) PutRecords(r []kgo.Record) {
	if c, ok := classOf(cap(r)); ok {
		clear(r[:cap(r)]) // no references to the batch it held
		p.recs.put(c, r, maxIdleRecords)
	}
}
