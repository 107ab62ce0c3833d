// Package cache is the bounded cache the stages share across partitions
// (user-agent parses, pseudonyms, anonymized IPs). One cache for every
// partition keeps memory independent of the partition count.
package cache

import (
	"strings"
	"sync"
	"sync/atomic"
)

// TwoGen is a bounded map from K to V, safe for concurrent use. It
// keeps two generations: when the current one holds Size entries it becomes
// the previous one and a new current one starts, so at most 2×Size entries
// are held and entries in use keep being found (a hit in the previous
// generation moves the entry to the current one).
type TwoGen[K comparable, V any] struct {
	size int

	mu   sync.RWMutex
	cur  map[K]V
	prev map[K]V

	hits, misses atomic.Int64
}

// New returns a cache of size entries per generation (size > 0).
func New[K comparable, V any](size int) *TwoGen[K, V] {
	return &TwoGen[K, V]{size: max(size, 1), cur: make(map[K]V)}
}

// Get returns the value cached for k.
func (c *TwoGen[K, V]) Get(k K) (V, bool) {
	c.mu.RLock()
	v, ok := c.cur[k]
	if ok {
		c.mu.RUnlock()
		c.hits.Add(1)
		return v, true
	}
	v, ok = c.prev[k]
	c.mu.RUnlock()
	if !ok {
		c.misses.Add(1)
		return v, false
	}
	c.hits.Add(1)
	c.Put(k, v)
	return v, true
}

// Put caches v for k; a string key is copied (the cache never pins the
// caller's buffer).
func (c *TwoGen[K, V]) Put(k K, v V) {
	if s, ok := any(k).(string); ok {
		k = any(strings.Clone(s)).(K)
	}
	c.mu.Lock()
	if len(c.cur) >= c.size {
		c.prev, c.cur = c.cur, make(map[K]V, c.size)
	}
	c.cur[k] = v
	c.mu.Unlock()
}

// Len is the number of entries held.
func (c *TwoGen[K, V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.prev)
}

// Hits and Misses count Get results since the cache was made.
func (c *TwoGen[K, V]) Hits() int64   { return c.hits.Load() }
func (c *TwoGen[K, V]) Misses() int64 { return c.misses.Load() }
