package geo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"testing"

	geoip2 "github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/sluicedata/sluice/internal/geodb"
	"github.com/sluicedata/sluice/pipeline"
)

// TestBlockCacheAgreesWithLookup: networks coarser than, equal to and
// finer than the anonymization blocks (IPv4 /16 … /30, IPv6 /32 … /64),
// holes between them, and addresses drawn around their edges. Every event,
// looked up cold and then again from the block cache (a block within one
// network, one straddling a few whose networks it keeps, one straddling
// more than maxSplit), gets exactly the geo columns a direct lookup of its
// own address gives, and the IPv4/IPv6 anonymization of its own address.
func TestBlockCacheAgreesWithLookup(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	var recs []geodb.Record
	var addrs []netip.Addr
	add := func(p netip.Prefix) {
		r := geodb.Networks[len(recs)%(len(geodb.Networks)-1)]
		r.Network = p.String()
		r.City = fmt.Sprintf("city-%d", len(recs)) // every network its own answer
		recs = append(recs, r)
		// Addresses at both ends, in the middle and around.
		a := p.Addr()
		last := lastAddr(p)
		addrs = append(addrs, a, last, a.Prev(), last.Next())
		for range 4 {
			addrs = append(addrs, randomIn(rng, p))
		}
	}
	for i := range 40 {
		base := netip.AddrFrom4([4]byte{byte(20 + i), byte(rng.IntN(256)), 0, 0})
		for _, bits := range []int{16, 20, 24, 25, 28, 30} {
			if bits == 16 && i%3 != 0 {
				continue
			}
			p, _ := randomIn(rng, netip.PrefixFrom(base, 16)).Prefix(bits)
			if bits == 16 {
				p = netip.PrefixFrom(base, 16)
				add(p)
				break // the whole /16 is one network
			}
			add(p)
		}
	}
	for i := range 20 {
		base := netip.AddrFrom16([16]byte{0x2a, 0x01, byte(i), byte(rng.IntN(256))})
		for _, bits := range []int{32, 44, 48, 56, 64} {
			p, _ := randomIn(rng, netip.PrefixFrom(base, 32)).Prefix(bits)
			if bits == 32 && i%4 != 0 {
				continue
			}
			add(p)
			if bits == 32 {
				break
			}
		}
	}
	// mmdbwriter merges overlapping inserts: the later network wins
	// inside it, the earlier one keeps the rest. That is fine: the
	// answer is whatever the database gives.
	path := filepath.Join(t.TempDir(), "blocks.mmdb")
	if err := geodb.Write(path, recs, 1); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ref, err := maxminddb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for _, o := range []Options{{}, {IPv4Bits: 4, IPv6Bits: 72}, {IPv4Bits: 12, IPv6Bits: 96}} {
		s, err := New(db, o)
		if err != nil {
			t.Fatal(err)
		}
		for pass := range 2 { // cold, then from the cache
			rng.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
			b := &pipeline.Batch{}
			for _, a := range addrs {
				b.Events = append(b.Events, pipeline.Event{IP: a})
			}
			if err := s.Process(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			for i, a := range addrs {
				want := directGeo(t, ref, a)
				e := &b.Events[i]
				if e.Geo != want {
					t.Fatalf("%+v pass %d: %s got %+v, a direct lookup gives %+v", o, pass, a, e.Geo, want)
				}
				keep := s.keep6
				if a.Is4() {
					keep = s.keep4
				}
				p, _ := a.Prefix(keep)
				if e.IPAnonymized != p.Addr().String() {
					t.Fatalf("%s anonymized %q, want %q", a, e.IPAnonymized, p.Addr())
				}
			}
		}
	}
	// Both kinds of block were met, and the second passes were answered
	// from the cache.
	whole, split, scanned := 0, 0, 0
	for _, a := range addrs {
		keeps := []int{48, 56, 32} // the IPv6 blocks of the three settings
		if a.Is4() {
			keeps = []int{24, 28, 20}
		}
		for _, keep := range keeps {
			p, _ := a.Prefix(keep)
			if bl := db.cur.blocks.get(keyOf(p)); bl != nil {
				switch {
				case bl.whole:
					whole++
				case len(bl.split) > 0:
					scanned++
				default:
					split++
				}
			}
		}
	}
	if hits := db.Stats().BlockHits.Load(); whole == 0 || split == 0 || scanned == 0 || hits == 0 {
		t.Errorf("blocks within one network %d, straddling networks (looked up) %d, straddling networks (their networks kept) %d, cache hits %d: every kind and hits expected",
			whole, split, scanned, hits)
	}
}

// directGeo is the geo columns of a straight lookup of a.
func directGeo(t *testing.T, r *maxminddb.Reader, a netip.Addr) pipeline.Geo {
	res := r.Lookup(a)
	if !res.Found() {
		return pipeline.Geo{}
	}
	var c geoip2.City
	if err := res.Decode(&c); err != nil {
		t.Fatal(err)
	}
	g := pipeline.Geo{CountryCode: c.Country.ISOCode, Country: c.Country.Names.English, City: c.City.Names.English,
		PostalCode: c.Postal.Code, TimeZone: c.Location.TimeZone}
	if len(c.Subdivisions) > 0 {
		g.RegionCode, g.Region = c.Subdivisions[0].ISOCode, c.Subdivisions[0].Names.English
	}
	if c.Location.Latitude != nil && c.Location.Longitude != nil {
		g.Latitude, g.Longitude, g.HasLocation = *c.Location.Latitude, *c.Location.Longitude, true
	}
	return g
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func randomIn(rng *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		if rng.IntN(2) == 1 {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
