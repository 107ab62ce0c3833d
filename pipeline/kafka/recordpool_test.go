package kafka

import (
	"math"
	"runtime"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestPoolClasses(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 65, 1000, 1 << 20, 1<<20 + 1} {
		c, ok := class(n)
		if !ok || 1<<(c+minClass) < n {
			t.Errorf("class(%d) = %d (size %d) does not hold it", n, c, 1<<(c+minClass))
		}
		if c > 0 && 1<<(c-1+minClass) >= n {
			t.Errorf("class(%d) = %d is not the smallest", n, c)
		}
	}
	if _, ok := class(1 << 40); ok {
		t.Error("a 1 TiB class")
	}
	for _, n := range []int{64, 100, 127, 128, 1 << 20} {
		c, ok := classOf(n)
		if !ok || 1<<(c+minClass) > n {
			t.Errorf("classOf(%d) = %d: its slices are not all that big", n, c)
		}
	}
	if _, ok := classOf(10); ok {
		t.Error("a 10-byte slice pooled")
	}
}

// TestPoolFitsSnappy: a snappy batch gets a buffer it decodes into, and
// the next batch of that size gets the same buffer back.
func TestPoolFitsSnappy(t *testing.T) {
	var p recordPool
	src := s2.EncodeSnappy(nil, make([]byte, 300_000))
	b := p.GetDecompressBytes(src, kgo.CodecSnappy)
	if cap(b) < 300_000 {
		t.Fatalf("buffer of %d for a 300,000-byte batch", cap(b))
	}
	out, err := s2.Decode(b, src)
	if err != nil || &out[0] != &b[:1][0] {
		t.Fatalf("decode did not use the pooled buffer (%v)", err)
	}
	p.PutDecompressBytes(out)
	runtime.GC() // a sync.Pool would drop it here
	runtime.GC()
	if again := p.GetDecompressBytes(src, kgo.CodecSnappy); cap(again) != cap(b) || &again[:1][0] != &b[:1][0] {
		t.Error("the buffer put back was not lent again")
	}
	r := p.GetRecords(1000)
	if cap(r) < 1000 {
		t.Fatalf("records cap %d", cap(r))
	}
	p.PutRecords(r[:3])
	if again := p.GetRecords(1000); len(again) != 0 || cap(again) != cap(r) {
		t.Errorf("records slice lent again with len %d cap %d, want 0 and %d", len(again), cap(again), cap(r))
	}
	if p.idle != 0 {
		t.Errorf("%d idle bytes with every slice lent", p.idle)
	}
}

// TestPoolBound: the pool keeps no more than maxIdle bytes of idle
// slices; the rest goes to the collector.
func TestPoolBound(t *testing.T) {
	var p recordPool
	const size = 1 << 20
	var lent [][]byte
	for range 2 * maxIdle / size {
		lent = append(lent, p.GetDecompressBytes(s2.EncodeSnappy(nil, make([]byte, size)), kgo.CodecSnappy))
	}
	for _, b := range lent {
		p.PutDecompressBytes(b)
	}
	if p.idle > maxIdle {
		t.Errorf("%d idle bytes, bound %d", p.idle, maxIdle)
	}
	if p.idle < maxIdle/2 {
		t.Errorf("only %d idle bytes kept of %d put back", p.idle, 2*maxIdle)
	}
	for range 2 * maxIdle / size {
		p.GetDecompressBytes(s2.EncodeSnappy(nil, make([]byte, size)), kgo.CodecSnappy)
	}
	if p.idle != 0 {
		t.Errorf("%d idle bytes after every slice was lent again", p.idle)
	}
}

// TestIdleBound: maxIdle without a memory limit or in a 256 MiB
// container's soft limit, a third of a lower one.
func TestIdleBound(t *testing.T) {
	for _, c := range []struct{ limit, want int64 }{
		{math.MaxInt64, maxIdle},
		{256 << 20 / 5 * 4, maxIdle},
		{96 << 20, 32 << 20},
	} {
		if got := idleBound(c.limit); got != c.want {
			t.Errorf("idleBound(%d) = %d, want %d", c.limit, got, c.want)
		}
	}
}

// TestPoolMakesRoom: at the bound, a slice put back takes the place of
// idle slices of the class that holds the most idle bytes, so a class
// that came back first cannot keep the others out; a slice of that
// fullest class itself is dropped. held always sums to idle.
func TestPoolMakesRoom(t *testing.T) {
	var p recordPool
	const small, large = 16 << 10, 64 << 10
	cs, _ := classOf(small)
	cl, _ := classOf(large)
	for range maxIdle / small {
		p.PutDecompressBytes(make([]byte, small))
	}
	if p.idle != maxIdle || len(p.bytes[cs]) != maxIdle/small {
		t.Fatalf("%d idle bytes in %d slices, want the bound in %d", p.idle, len(p.bytes[cs]), maxIdle/small)
	}
	p.PutDecompressBytes(make([]byte, small)) // the fullest class: dropped
	if len(p.bytes[cs]) != maxIdle/small {
		t.Errorf("%d small slices after one more at the bound, want %d", len(p.bytes[cs]), maxIdle/small)
	}
	for range 3 {
		p.PutDecompressBytes(make([]byte, large))
	}
	if len(p.bytes[cl]) != 3 || len(p.bytes[cs]) != maxIdle/small-3*large/small {
		t.Errorf("%d large and %d small slices, want 3 and %d", len(p.bytes[cl]), len(p.bytes[cs]), maxIdle/small-3*large/small)
	}
	p.PutRecords(make([]kgo.Record, 0, 1024))
	if len(p.recs[4]) != 1 {
		t.Error("a records slice was not kept at the bound")
	}
	var sum int64
	for k := range p.held {
		for _, n := range p.held[k] {
			sum += n
		}
	}
	if p.idle > maxIdle || sum != p.idle {
		t.Errorf("idle %d, held %d, bound %d", p.idle, sum, maxIdle)
	}
	if b := p.GetDecompressBytes(s2.EncodeSnappy(nil, make([]byte, large)), kgo.CodecSnappy); cap(b) != large {
		t.Errorf("a large batch got cap %d, want a kept %d", cap(b), large)
	}
}

// TestPoolLendsExactSnappy: a snappy batch's buffer is lent with its
// decoded size as capacity (the client zeroes up to the capacity before
// it gives a buffer back) and goes back whole to its class; a buffer the
// pool did not lend, or whose record was dropped, goes by its own capacity.
func TestPoolLendsExactSnappy(t *testing.T) {
	var p recordPool
	src := s2.EncodeSnappy(nil, make([]byte, 300_000))
	b := p.GetDecompressBytes(src, kgo.CodecSnappy)
	if cap(b) != 300_000 {
		t.Fatalf("lent with cap %d, want the decoded 300,000", cap(b))
	}
	p.PutDecompressBytes(b[:cap(b)])
	if full := 1 << 19; p.idle != int64(full) {
		t.Errorf("%d idle bytes, want the whole array of %d", p.idle, full)
	}
	if again := p.GetDecompressBytes(s2.EncodeSnappy(nil, make([]byte, 400_000)), kgo.CodecSnappy); cap(again) != 400_000 || &again[:1][0] != &b[:1][0] {
		t.Errorf("the array was not lent again for a batch it holds (cap %d)", cap(again))
	}
	if len(p.lent[0])+len(p.lent[1]) != 1 {
		t.Errorf("%d buffers lent on record, want 1", len(p.lent[0])+len(p.lent[1]))
	}

	// Not the pool's: kept by its capacity's class.
	p.PutDecompressBytes(make([]byte, 70_000))
	if c, _ := classOf(70_000); len(p.bytes[c]) != 1 {
		t.Error("a foreign buffer was not kept in its class")
	}
	// A buffer lent one generation ago still comes back whole; past two
	// generations the record is dropped and a buffer lent before comes
	// back as the capacity it was lent with.
	q := recordPool{}
	snappy1000 := s2.EncodeSnappy(nil, make([]byte, 1000))
	first := q.GetDecompressBytes(snappy1000, kgo.CodecSnappy)
	for range maxLent {
		q.GetDecompressBytes(snappy1000, kgo.CodecSnappy)
	}
	second := q.GetDecompressBytes(snappy1000, kgo.CodecSnappy) // a generation later than first
	q.PutDecompressBytes(first)
	if c, _ := classOf(1024); len(q.bytes[c]) != 1 || cap(q.bytes[c][0]) != 1024 {
		t.Fatal("a buffer lent a generation ago did not come back whole")
	}
	q.GetDecompressBytes(snappy1000, kgo.CodecSnappy) // takes first's array again
	for range 2 * maxLent {
		q.GetDecompressBytes(snappy1000, kgo.CodecSnappy)
	}
	if n := len(q.lent[0]) + len(q.lent[1]); n > 2*maxLent {
		t.Errorf("%d buffers on record, bound %d", n, 2*maxLent)
	}
	q.PutDecompressBytes(second)
	if c, _ := classOf(1000); len(q.bytes[c]) != 1 || cap(q.bytes[c][0]) != 1000 {
		t.Error("a buffer lent two generations ago did not come back by its lent capacity")
	}
	// Other codecs: the whole array (their size is a guess the client
	// may outgrow).
	if z := q.GetDecompressBytes(make([]byte, 1000), kgo.CodecZstd); cap(z) != 4096 {
		t.Errorf("zstd buffer cap %d, want the class's 4096", cap(z))
	}
}
