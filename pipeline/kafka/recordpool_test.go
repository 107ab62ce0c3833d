package kafka

import (
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

// TestPoolFitsSnappy: a snappy batch gets a buffer it decodes into (no
// check that a Put comes back: sync.Pool may drop it, and does at random
// under -race).
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
	r := p.GetRecords(1000)
	if cap(r) < 1000 {
		t.Fatalf("records cap %d", cap(r))
	}
}
