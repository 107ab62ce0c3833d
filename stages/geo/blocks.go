package geo

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
)

// blockCache maps anonymization blocks to what they give their addresses.
// It is shared by every partition and read by all of them at once, so it
// takes no lock: a fixed array of slots, two to a set (the set is chosen
// by a hash of the block), each an atomic pointer to an entry that is
// never changed once stored. A lookup reads the two slots of its set; an
// insert puts the new entry in the set's first slot and moves the one it
// finds there to the second, dropping the second's (so a set keeps the
// two blocks stored last). Concurrent inserts into one set may drop an
// entry more; a dropped block is looked up again. Memory is fixed by the
// number of sets.
//
// The shared map it replaces (two generations behind sharded read-write
// locks) cost the tracker workload 8% of its CPU in this lookup alone:
// two atomic updates of a lock and a hit counter on lines every core
// writes, a generic hash for the shard and another for the map, and a
// probe of a map of 130,000 entries for each event.
type blockCache struct {
	seed  uint64
	shift uint // 64 - log2(sets)
	slots []atomic.Pointer[blockEntry]
}

// blockKey is a block: its address's 16 bytes (IPv4 as IPv4-mapped) and
// its prefix length, with bit 8 set for an IPv4 block.
type blockKey struct {
	hi, lo uint64
	bits   uint16
}

func keyOf(p netip.Prefix) blockKey {
	a := p.Addr().As16()
	k := blockKey{hi: binary.BigEndian.Uint64(a[:8]), lo: binary.BigEndian.Uint64(a[8:]), bits: uint16(p.Bits())}
	if p.Addr().Is4() {
		k.bits |= 1 << 8
	}
	return k
}

type blockEntry struct {
	key blockKey
	block
}

// newBlockCache returns a cache of 2^setBits sets of two.
func newBlockCache(setBits uint) *blockCache {
	return &blockCache{
		seed:  rand.Uint64() | 1,
		shift: 64 - setBits,
		slots: make([]atomic.Pointer[blockEntry], 2<<setBits),
	}
}

// set is the index of k's first slot.
func (c *blockCache) set(k blockKey) uint64 {
	h := (k.hi ^ c.seed) * 0x9e3779b97f4a7c15
	h ^= (k.lo + uint64(k.bits)) * 0xc2b2ae3d27d4eb4f
	h ^= h >> 29
	h *= 0x94d049bb133111eb
	return (h >> c.shift) << 1
}

// get returns the block k, or nil.
func (c *blockCache) get(k blockKey) *blockEntry {
	i := c.set(k)
	if e := c.slots[i].Load(); e != nil && e.key == k {
		return e
	}
	if e := c.slots[i+1].Load(); e != nil && e.key == k {
		return e
	}
	return nil
}

// put stores e (never changed after).
func (c *blockCache) put(e *blockEntry) {
	i := c.set(e.key)
	if old := c.slots[i].Swap(e); old != nil && old.key != e.key {
		c.slots[i+1].Store(old)
	}
}

// len is the number of blocks held.
func (c *blockCache) len() int {
	n := 0
	for i := range c.slots {
		if c.slots[i].Load() != nil {
			n++
		}
	}
	return n
}
