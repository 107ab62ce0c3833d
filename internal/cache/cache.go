// Package cache is the bounded string-keyed cache the stages share across
// partitions (user-agent parses, pseudonyms). One cache for every
// partition keeps memory independent of the partition count.
package cache

import (
	"strings"
	"sync"
	"sync/atomic"
)

// TwoGen is a bounded map from string to V, safe for concurrent use. It
// keeps two generations: when the current one holds Size entries it becomes
// the previous one and a new current one starts, so at most 2×Size entries
// are held and entries in use keep being found (a hit in the previous
// generation moves the entry to the current one).
type TwoGen[V any] struct {
	size int

	mu   sync.RWMutex
	cur  map[string]V
	prev map[string]V

	hits, misses atomic.Int64
}

// New returns a cache of size entries per generation (size > 0).
func New[V any](size int) *TwoGen[V] {
	return &TwoGen[V]{size: max(size, 1), cur: make(map[string]V)}
}

// Get returns the value cached for k.
func (c *TwoGen[V]) Get(k string) (V, bool) {
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

// Put caches v for a copy of k (the cache never pins the caller's buffer).
func (c *TwoGen[V]) Put(k string, v V) {
	k = strings.Clone(k)
	c.mu.Lock()
	if len(c.cur) >= c.size {
		c.prev, c.cur = c.cur, make(map[string]V, c.size)
	}
	c.cur[k] = v
	c.mu.Unlock()
}

// Len is the number of entries held.
func (c *TwoGen[V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.prev)
}

// Hits and Misses count Get results since the cache was made.
func (c *TwoGen[V]) Hits() int64   { return c.hits.Load() }
func (c *TwoGen[V]) Misses() int64 { return c.misses.Load() }
