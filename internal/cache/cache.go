// Package cache is the bounded cache the stages share across partitions
// (user-agent parses, geo blocks with their anonymized IPs). One cache for every
// partition keeps memory independent of the partition count.
package cache

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
)

// TwoGen is a bounded map from K to V, safe for concurrent use. It
// keeps two generations: when the current one holds Size entries it becomes
// the previous one and a new current one starts, so at most 2×Size entries
// are held and entries in use keep being found (a hit in the previous
// generation moves the entry to the current one).
//
// The map is split into shards by a hash of the key, each with its own
// lock and counters on its own cache lines: partition workers on different
// cores then rarely write the same memory, where one lock and one pair of
// atomic counters for all of them bounced between the cores on every
// lookup. Each shard bounds its own generations (Size / shards entries).
type TwoGen[K comparable, V any] struct {
	seed   maphash.Seed
	shards []shard[K, V]
	mask   uint64
}

type shard[K comparable, V any] struct {
	mu           sync.RWMutex
	size         int
	cur, prev    map[K]entry[K, V]
	hits, misses atomic.Int64
	_            [64]byte // the next shard's lock on another cache line
}

// entry is a cached value with the cache's own copy of its key, which a
// promotion from the previous generation moves instead of copying again.
type entry[K comparable, V any] struct {
	k K
	v V
}

// maxShards bounds the split; a cache of fewer than minShardSize ×
// maxShards entries has fewer shards.
const (
	maxShards    = 32
	minShardSize = 256
)

// New returns a cache of size entries per generation (size > 0).
func New[K comparable, V any](size int) *TwoGen[K, V] {
	size = max(size, 1)
	n := 1
	for n < maxShards && size/(n*2) >= minShardSize {
		n *= 2
	}
	c := &TwoGen[K, V]{seed: maphash.MakeSeed(), shards: make([]shard[K, V], n), mask: uint64(n - 1)}
	for i := range c.shards {
		c.shards[i].size = max(size/n, 1)
		c.shards[i].cur = make(map[K]entry[K, V])
	}
	return c
}

func (c *TwoGen[K, V]) shard(k K) *shard[K, V] {
	if c.mask == 0 {
		return &c.shards[0]
	}
	return &c.shards[maphash.Comparable(c.seed, k)&c.mask]
}

// Get returns the value cached for k.
func (c *TwoGen[K, V]) Get(k K) (V, bool) {
	s := c.shard(k)
	s.mu.RLock()
	e, ok := s.cur[k]
	if ok {
		s.mu.RUnlock()
		s.hits.Add(1)
		return e.v, true
	}
	e, ok = s.prev[k]
	s.mu.RUnlock()
	if !ok {
		s.misses.Add(1)
		return e.v, false
	}
	s.hits.Add(1)
	c.PutOwned(e.k, e.v) // promoted with the cache's own key: no copy
	return e.v, true
}

// Put caches v for k; a string key is copied (the cache never pins the
// caller's buffer).
func (c *TwoGen[K, V]) Put(k K, v V) {
	if s, ok := any(k).(string); ok {
		k = any(strings.Clone(s)).(K)
	}
	c.PutOwned(k, v)
}

// PutOwned caches v for k as it is: a string key must not alias memory
// that changes (one the caller allocated for the cache).
func (c *TwoGen[K, V]) PutOwned(k K, v V) {
	s := c.shard(k)
	s.mu.Lock()
	if len(s.cur) >= s.size {
		s.prev, s.cur = s.cur, make(map[K]entry[K, V], s.size)
	}
	s.cur[k] = entry[K, V]{k, v}
	s.mu.Unlock()
}

// Len is the number of entries held.
func (c *TwoGen[K, V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.cur) + len(s.prev)
		s.mu.RUnlock()
	}
	return n
}

// Hits and Misses count Get results since the cache was made.
func (c *TwoGen[K, V]) Hits() int64 {
	var n int64
	for i := range c.shards {
		n += c.shards[i].hits.Load()
	}
	return n
}

func (c *TwoGen[K, V]) Misses() int64 {
	var n int64
	for i := range c.shards {
		n += c.shards[i].misses.Load()
	}
	return n
}
