// Package geo is the geo enrichment stage: it looks the event's IP up in a
// memory-mapped MaxMind GeoIP2/GeoLite2 City or Country database, fills the
// geo columns with English names, then anonymizes the IP. The database file
// can be replaced while running: a Database polls it and swaps the new one
// in atomically; a missing or corrupt replacement keeps the old one.
package geo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	geoip2 "github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/sluicedata/sluice/pipeline"
)

// StageName is the name of this stage.
const StageName = "geo"

// Stats are the stage's counters, shared by every partition.
type Stats struct {
	Lookups       atomic.Int64 // events with a valid IP looked up
	Misses        atomic.Int64 // valid IPs the database has no record for
	BlockHits     atomic.Int64 // lookups answered by the block cache, no tree walk
	InvalidIPs    atomic.Int64 // events whose ip was not an address
	Reloads       atomic.Int64 // successful hot reloads
	ReloadErrors  atomic.Int64 // replacements rejected (old database kept)
	BuildEpoch    atomic.Int64 // build time of the database in use, Unix seconds
	LoadedAtEpoch atomic.Int64 // when the database in use was loaded, Unix seconds
}

// loaded is one open database with its record cache.
type loaded struct {
	r     *maxminddb.Reader
	stamp fileStamp

	mu    sync.RWMutex
	cache map[uintptr]*pipeline.Geo // data offset → decoded record

	// blocks caches, per anonymization block (the address with its low
	// bits zeroed), its ip_anonymized text and, when the block lies within
	// one network of this database, the geo columns of every address in
	// it: most events then cost one cache lookup instead of a walk down
	// the search tree. Shared by every partition (memory independent of
	// their number).
	blocks *blockCache
}

// block is what an anonymization block gives its addresses.
type block struct {
	anon string
	// whole: the block lies within one network of the database, so geo
	// (nil: no record) holds for every address in it.
	whole bool
	geo   *pipeline.Geo
	// split: the block straddles networks: these, every network of the
	// database within it (with or without a record), cover it; an
	// address takes the geo of the one that holds it. Empty when there
	// are more than maxSplit: each address is then looked up.
	split []subnet
}

type subnet struct {
	net netip.Prefix
	geo *pipeline.Geo
}

// maxSplit bounds the networks a block keeps: a /24 of an IPv4 database
// usually straddles a handful, and a scan of a few prefixes is cheaper
// than a walk down the search tree.
const maxSplit = 16

// find returns the geo of ip from the block's split, and whether one of
// its networks holds ip.
func (b *block) find(ip netip.Addr) (*pipeline.Geo, bool) {
	for i := range b.split {
		if b.split[i].net.Contains(ip) {
			return b.split[i].geo, true
		}
	}
	return nil, false
}

// splitOf lists the networks within blk, nil when they are more than
// maxSplit or one is not of blk's family (an IPv4 block of an IPv6
// database whose networks come back in IPv6 form is looked up address
// by address, as before).
func (l *loaded) splitOf(blk netip.Prefix) ([]subnet, error) {
	var out []subnet
	for res := range l.r.NetworksWithin(blk, maxminddb.IncludeNetworksWithoutData()) {
		if err := res.Err(); err != nil {
			return nil, err
		}
		n := res.Prefix()
		if len(out) == maxSplit || n.Addr().Is4() != blk.Addr().Is4() {
			return nil, nil
		}
		var g *pipeline.Geo
		if res.Found() {
			var err error
			if g, err = l.record(res); err != nil {
				return nil, err
			}
		}
		out = append(out, subnet{n, g})
	}
	return out, nil
}

// blockSetBits: the block cache holds 2 × 2^16 blocks, the most the two
// generations of 2^16 it replaced held: 1 MiB of slots and, when full,
// about 100 bytes an entry with its text (13 MiB), plus the networks of
// blocks that keep them.
const blockSetBits = 16

const maxCachedRecords = 1 << 17

type fileStamp struct {
	size    int64
	modTime time.Time
}

func stat(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.Size(), fi.ModTime()}, nil
}

// open maps a private copy of path and checks it is a City or Country
// database that answers. The copy matters: mapping the file itself would
// crash the process (SIGBUS) when someone overwrites it in place with cp;
// the copy is unlinked at once and lives only as the mapping.
func open(path string) (*loaded, error) {
	st, err := stat(path)
	if err != nil {
		return nil, fmt.Errorf("geo database: %w", err)
	}
	private, err := privateCopy(path)
	if err != nil {
		return nil, fmt.Errorf("geo database %s: %w", path, err)
	}
	r, err := maxminddb.Open(private)
	os.Remove(private)
	if err != nil {
		return nil, fmt.Errorf("geo database %s: %w", path, err)
	}
	t := r.Metadata.DatabaseType
	if !strings.Contains(t, "City") && !strings.Contains(t, "Country") {
		r.Close()
		return nil, fmt.Errorf("geo database %s: type %q is not a GeoIP2/GeoLite2 City or Country database", path, t)
	}
	// A probe lookup walks the search tree and decodes a record, which
	// catches truncated and corrupt files that still have valid metadata.
	for _, probe := range []string{"1.1.1.1", "2001:4860:4860::8888"} {
		res := r.Lookup(netip.MustParseAddr(probe))
		if err := res.Err(); err != nil {
			r.Close()
			return nil, fmt.Errorf("geo database %s is corrupt: %w", path, err)
		}
		if res.Found() {
			var c geoip2.City
			if err := res.Decode(&c); err != nil {
				r.Close()
				return nil, fmt.Errorf("geo database %s is corrupt: %w", path, err)
			}
		}
	}
	return &loaded{r: r, stamp: st, cache: make(map[uintptr]*pipeline.Geo), blocks: newBlockCache(blockSetBits)}, nil
}

func privateCopy(path string) (string, error) {
	src, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst, err := os.CreateTemp("", "sluice-geo-*.mmdb")
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		os.Remove(dst.Name())
		return "", err
	}
	if err := dst.Close(); err != nil {
		os.Remove(dst.Name())
		return "", err
	}
	return dst.Name(), nil
}

// record returns the geo columns of the record at res, decoding each
// distinct record once.
func (l *loaded) record(res maxminddb.Result) (*pipeline.Geo, error) {
	off := res.Offset()
	l.mu.RLock()
	g, ok := l.cache[off]
	l.mu.RUnlock()
	if ok {
		return g, nil
	}
	var c geoip2.City
	if err := res.Decode(&c); err != nil {
		return nil, err
	}
	g = &pipeline.Geo{
		CountryCode: c.Country.ISOCode,
		Country:     c.Country.Names.English,
		City:        c.City.Names.English,
		PostalCode:  c.Postal.Code,
		TimeZone:    c.Location.TimeZone,
	}
	if len(c.Subdivisions) > 0 {
		g.RegionCode = c.Subdivisions[0].ISOCode
		g.Region = c.Subdivisions[0].Names.English
	}
	if c.Location.Latitude != nil && c.Location.Longitude != nil {
		g.Latitude, g.Longitude, g.HasLocation = *c.Location.Latitude, *c.Location.Longitude, true
	}
	l.mu.Lock()
	if len(l.cache) >= maxCachedRecords {
		clear(l.cache)
	}
	l.cache[off] = g
	l.mu.Unlock()
	return g, nil
}

// Database is a hot-reloadable MaxMind database shared by every partition.
type Database struct {
	path  string
	log   *slog.Logger
	stats Stats

	mu  sync.RWMutex // held for reading while a batch uses cur
	cur *loaded
}

// Open maps the database at path. A missing, corrupt or wrong-type file is
// an error: at start that is a configuration error.
func Open(path string, log *slog.Logger) (*Database, error) {
	l, err := open(path)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Database{path: path, log: log, cur: l}
	d.stats.BuildEpoch.Store(int64(l.r.Metadata.BuildEpoch))
	d.stats.LoadedAtEpoch.Store(time.Now().Unix())
	return d, nil
}

// Stats returns the counters.
func (d *Database) Stats() *Stats { return &d.stats }

// Reload swaps in the file at the database path if it changed since it was
// loaded. It reports whether it swapped. A replacement that cannot be
// opened is an error and the database in use stays.
func (d *Database) Reload() (bool, error) {
	st, err := stat(d.path)
	d.mu.RLock()
	same := err == nil && st == d.cur.stamp
	d.mu.RUnlock()
	if same {
		return false, nil
	}
	if err != nil {
		d.stats.ReloadErrors.Add(1)
		return false, fmt.Errorf("geo reload (keeping the loaded database): %w", err)
	}
	l, err := open(d.path)
	if err != nil {
		d.stats.ReloadErrors.Add(1)
		return false, fmt.Errorf("geo reload (keeping the loaded database): %w", err)
	}
	d.mu.Lock()
	old := d.cur
	d.cur = l
	d.mu.Unlock()
	// No batch holds old any more: batches hold the read lock while
	// they use the database, and the swap took the write lock.
	old.r.Close()
	d.stats.Reloads.Add(1)
	d.stats.BuildEpoch.Store(int64(l.r.Metadata.BuildEpoch))
	d.stats.LoadedAtEpoch.Store(time.Now().Unix())
	return true, nil
}

// Watch polls the database file every interval and reloads it when it
// changes, until ctx ends. Its caller owns the goroutine.
func (d *Database) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			swapped, err := d.Reload()
			if err != nil {
				d.log.Error("geo database not reloaded", "path", d.path, "err", err)
			} else if swapped {
				d.log.Info("geo database reloaded", "path", d.path, "build", time.Unix(d.stats.BuildEpoch.Load(), 0).UTC())
			}
		}
	}
}

// Close unmaps the database.
func (d *Database) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur.r.Close()
}

// Options configure the stage.
type Options struct {
	// IPv4Bits and IPv6Bits are how many low bits of the address are
	// zeroed in ip_anonymized. Defaults 8 and 80 (use -1 for 0).
	IPv4Bits, IPv6Bits int
}

// Validate reports every problem of o.
func (o Options) Validate() error {
	var errs []error
	if o.IPv4Bits < -1 || o.IPv4Bits > 32 {
		errs = append(errs, fmt.Errorf("anonymize_ipv4_bits: %d is not in [0, 32]", o.IPv4Bits))
	}
	if o.IPv6Bits < -1 || o.IPv6Bits > 128 {
		errs = append(errs, fmt.Errorf("anonymize_ipv6_bits: %d is not in [0, 128]", o.IPv6Bits))
	}
	return errors.Join(errs...)
}

// Stage enriches events of one partition from a shared Database.
type Stage struct {
	db    *Database
	keep4 int // prefix bits kept
	keep6 int
}

// New returns a stage over db.
func New(db *Database, o Options) (*Stage, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	bits := func(v, def int) int {
		switch v {
		case 0:
			return def
		case -1:
			return 0
		}
		return v
	}
	return &Stage{
		db:    db,
		keep4: 32 - bits(o.IPv4Bits, 8),
		keep6: 128 - bits(o.IPv6Bits, 80),
	}, nil
}

// Name implements pipeline.Stage.
func (s *Stage) Name() string { return StageName }

// Process implements pipeline.Stage. Events without a valid IP get null geo
// columns and a null ip_anonymized; unknown and private IPs get null geo
// columns and their anonymized IP.
func (s *Stage) Process(_ context.Context, b *pipeline.Batch) error {
	s.db.mu.RLock()
	defer s.db.mu.RUnlock()
	l := s.db.cur
	var lookups, misses, invalid, hits int64
	for i := range b.Events {
		e := &b.Events[i]
		if e.State != pipeline.Keep {
			continue
		}
		if !e.IP.IsValid() {
			if e.IPInvalid {
				invalid++
			}
			continue
		}
		lookups++
		ip := e.IP.WithZone("")
		keep := s.keep6
		if ip.Is4() {
			keep = s.keep4
		}
		blk, err := ip.Prefix(keep)
		if err != nil {
			return fmt.Errorf("geo anonymize %d bits: %w", keep, err)
		}
		key := keyOf(blk)
		bl := l.blocks.get(key)
		var g *pipeline.Geo
		found := false
		if bl != nil {
			if bl.whole {
				g, found = bl.geo, true
			} else {
				g, found = bl.find(ip)
			}
		}
		if found {
			hits++
		} else {
			res := l.r.Lookup(ip)
			if err := res.Err(); err != nil {
				return fmt.Errorf("geo lookup: %w", err)
			}
			if res.Found() {
				if g, err = l.record(res); err != nil {
					return fmt.Errorf("geo decode: %w", err)
				}
			}
			if bl == nil {
				bl = &blockEntry{key: key, block: block{anon: blk.Addr().String(), whole: within(blk, res.Prefix()), geo: g}}
				if !bl.whole {
					if bl.split, err = l.splitOf(blk); err != nil {
						return fmt.Errorf("geo networks of %s: %w", blk, err)
					}
				}
				l.blocks.put(bl)
			}
		}
		if g != nil {
			e.Geo = *g
		} else {
			misses++
		}
		e.IPAnonymized = bl.anon
	}
	s.db.stats.Lookups.Add(lookups)
	s.db.stats.Misses.Add(misses)
	s.db.stats.BlockHits.Add(hits)
	s.db.stats.InvalidIPs.Add(invalid)
	return nil
}

// within reports whether block blk lies inside network n, the network of
// one of its addresses in the database. A network above the database's
// IPv4 subtree comes back as an IPv6 prefix: it holds every IPv4 address.
func within(blk, n netip.Prefix) bool {
	if blk.Addr().Is4() && !n.Addr().Is4() {
		return n.IsValid()
	}
	return n.IsValid() && n.Bits() <= blk.Bits() && n.Contains(blk.Addr())
}
