package kafka

import (
	"bytes"
	"math/bits"
	"sync"

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
type recordPool struct {
	bytes [poolClasses]sync.Pool // *[]byte with cap in [2^(minClass+i), 2^(minClass+i+1))
	recs  [poolClasses]sync.Pool // *[]kgo.Record, same classes by length
}

const (
	minClass    = 6 // 64 records / bytes
	poolClasses = 22
)

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
	if v, _ := p.bytes[c].Get().(*[]byte); v != nil {
		return *v
	}
	return make([]byte, 0, 1<<(c+minClass))
}

// xerialPrefix starts a snappy batch framed by the Java client's xerial
// format, whose decoded size is not in its header.
var xerialPrefix = []byte{130, 83, 78, 65, 80, 80, 89, 0}

// PutDecompressBytes implements kgo.PoolDecompressBytes.
func (p *recordPool) PutDecompressBytes(b []byte) {
	if c, ok := classOf(cap(b)); ok {
		p.bytes[c].Put(&b)
	}
}

// GetRecords implements kgo.PoolRecords.
func (p *recordPool) GetRecords(n int) []kgo.Record {
	c, ok := class(n)
	if !ok {
		return make([]kgo.Record, 0, n)
	}
	if v, _ := p.recs[c].Get().(*[]kgo.Record); v != nil {
		return (*v)[:0]
	}
	return make([]kgo.Record, 0, 1<<(c+minClass))
}

// PutRecords implements kgo.PoolRecords.
func (p *recordPool) PutRecords(r []kgo.Record) {
	if c, ok := classOf(cap(r)); ok {
		p.recs[c].Put(&r)
	}
}
