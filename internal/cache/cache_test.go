package cache

import (
	"fmt"
	"sync"
	"testing"
	"unsafe"
)

func TestTwoGenBoundAndPromotion(t *testing.T) {
	c := New[string, int](3)
	for i := range 3 {
		c.Put(fmt.Sprint(i), i)
	}
	c.Put("3", 3) // the first generation is full: it becomes the previous one
	if v, ok := c.Get("0"); !ok || v != 0 {
		t.Fatalf("an entry of the previous generation is lost: %v %v", v, ok)
	}
	// "0" moved to the current generation; the next turnover drops the
	// previous one ("1", "2") but keeps it.
	c.Put("4", 4)
	c.Put("5", 5)
	if _, ok := c.Get("1"); ok {
		t.Error("an entry unused for two generations is still cached")
	}
	if _, ok := c.Get("0"); !ok {
		t.Error("a promoted entry was dropped")
	}
	if c.Len() > 6 {
		t.Errorf("%d entries held, bound 2x3", c.Len())
	}
	if c.Hits() != 2 || c.Misses() != 1 {
		t.Errorf("hits %d misses %d", c.Hits(), c.Misses())
	}
}

func TestTwoGenKeyIsCopied(t *testing.T) {
	c := New[string, int](10)
	b := []byte("abc")
	c.Put(unsafe.String(&b[0], len(b)), 1) // a key aliasing a buffer, as decode's are
	b[0] = 'x'
	if _, ok := c.Get("abc"); !ok {
		t.Error("cached key changed with the caller's buffer")
	}
	// A promotion from the previous generation keeps the cache's key,
	// not the one the lookup was made with.
	p := New[string, int](1)
	p.Put("abc", 1)
	p.Put("other", 2) // "abc" is in the previous generation now
	q := []byte("abc")
	if v, ok := p.Get(unsafe.String(&q[0], len(q))); !ok || v != 1 {
		t.Fatalf("previous generation: %v %v", v, ok)
	}
	q[0] = 'x'
	if v, ok := p.Get("abc"); !ok || v != 1 {
		t.Error("a promoted key changed with the caller's buffer")
	}
}

// TestTwoGenConcurrent is for -race: many goroutines over one cache.
func TestTwoGenConcurrent(t *testing.T) {
	c := New[string, string](100)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := fmt.Sprint((i * (g + 1)) % 300)
				if v, ok := c.Get(k); ok && v != "v"+k {
					t.Errorf("key %s has value %s", k, v)
					return
				}
				c.Put(k, "v"+k)
			}
		}()
	}
	wg.Wait()
	if c.Len() > 200 {
		t.Errorf("%d entries held, bound 200", c.Len())
	}
}

// TestTwoGenSharded: a cache large enough to be split keeps its bound and
// finds every entry it holds.
func TestTwoGenSharded(t *testing.T) {
	c := New[string, int](1 << 14)
	if len(c.shards) < 2 {
		t.Fatalf("%d shards", len(c.shards))
	}
	// Half the size: every shard (1/32 of it) stays within its own
	// bound, nothing turns over.
	for i := range 1 << 13 {
		c.Put(fmt.Sprint(i), i)
	}
	found := 0
	for i := range 1 << 13 {
		if v, ok := c.Get(fmt.Sprint(i)); ok {
			if v != i {
				t.Fatalf("key %d has value %d", i, v)
			}
			found++
		}
	}
	if found != 1<<13 {
		t.Errorf("%d of %d entries found", found, 1<<13)
	}
	for i := range 1 << 16 {
		c.Put(fmt.Sprint("x", i), i)
	}
	if c.Len() > 2<<14 {
		t.Errorf("%d entries held, bound %d", c.Len(), 2<<14)
	}
	if c.Hits() != 1<<13 || c.Misses() != 0 {
		t.Errorf("hits %d misses %d", c.Hits(), c.Misses())
	}
}
