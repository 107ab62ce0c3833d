package geo

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
)

// TestBlockCacheSets: a set keeps the two blocks stored last; a third
// drops the older; blocks of the same address bits but another length or
// family are other keys; storing a block again keeps its set's other one.
func TestBlockCacheSets(t *testing.T) {
	c := newBlockCache(0) // one set: every block collides
	entry := func(p string) *blockEntry {
		pf := netip.MustParsePrefix(p)
		return &blockEntry{key: keyOf(pf), block: block{anon: pf.Addr().String()}}
	}
	a, b, d := entry("10.0.0.0/24"), entry("10.0.1.0/24"), entry("10.0.2.0/24")
	c.put(a)
	c.put(b)
	if c.get(a.key) != a || c.get(b.key) != b {
		t.Fatal("two blocks in a set of two: both expected")
	}
	c.put(b) // again: a stays
	if c.get(a.key) != a {
		t.Fatal("storing the first slot's block again dropped the other")
	}
	c.put(d)
	if c.get(a.key) != nil || c.get(b.key) != b || c.get(d.key) != d {
		t.Fatal("a third block must drop the older of the two")
	}
	for _, p := range []string{"10.0.2.0/23", "::ffff:10.0.2.0/120", "::ffff:10.0.2.0/24"} {
		if e := c.get(keyOf(netip.MustParsePrefix(p))); e != nil {
			t.Errorf("%s found as %s", p, e.anon)
		}
	}
	if n := c.len(); n != 2 {
		t.Errorf("len %d, want 2", n)
	}
}

// TestBlockCacheConcurrent: readers and writers of overlapping blocks at
// once (run under -race): every block found is the one asked for, with
// the text stored with it.
func TestBlockCacheConcurrent(t *testing.T) {
	c := newBlockCache(4)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := range 20_000 {
				p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(w), byte(i % 97), 0}), 24)
				k := keyOf(p)
				if e := c.get(k); e != nil {
					if e.key != k || e.anon != p.Addr().String() {
						errs <- fmt.Errorf("asked %s, got %s", p, e.anon)
						return
					}
					continue
				}
				c.put(&blockEntry{key: k, block: block{anon: p.Addr().String()}})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := c.len(); n == 0 || n > 32 {
		t.Errorf("len %d, want 1..32", n)
	}
}
