package geo

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/internal/testkit"
	"github.com/sluicedata/sluice/pipeline"
)

func run(t *testing.T, s *Stage, ips ...string) []pipeline.Event {
	t.Helper()
	b := &pipeline.Batch{}
	for _, ip := range ips {
		e := pipeline.Event{}
		if a, err := netip.ParseAddr(ip); err == nil {
			e.IP = a.Unmap()
		} else if ip != "" {
			e.IPInvalid = true
		}
		b.Events = append(b.Events, e)
	}
	if err := s.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return b.Events
}

func TestLookupKnownAnswers(t *testing.T) {
	db, err := Open(testkit.GeoDB(t, testkit.GeoNetworks, 1700000000), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, _ := New(db, Options{})
	ev := run(t, s, "81.2.69.142", "185.199.1.2", "5.9.1.1", "2001:db8:1:2::7", "10.1.2.3", "", "bogus", "192.0.2.1")

	london := ev[0]
	if g := london.Geo; g.CountryCode != "GB" || g.Country != "United Kingdom" || g.RegionCode != "ENG" || g.Region != "England" ||
		g.City != "London" || g.PostalCode != "EC1A" || g.TimeZone != "Europe/London" || !g.HasLocation || g.Latitude != 51.5142 {
		t.Errorf("London: %+v", g)
	}
	if london.IPAnonymized != "81.2.69.0" {
		t.Errorf("anonymized %q", london.IPAnonymized)
	}
	if ev[1].Geo.RegionCode != "BE" || ev[1].Geo.Country != "Germany" {
		t.Errorf("region code as MaxMind gives it: %+v", ev[1].Geo)
	}
	if g := ev[2].Geo; !g.HasLocation || g.Latitude != 0 || g.City != "" || g.CountryCode != "GH" {
		t.Errorf("lat 0 must be known, city unknown: %+v", g)
	}
	if ev[3].Geo.City != "Dublin" || ev[3].IPAnonymized != "2001:db8:1::" {
		t.Errorf("IPv6: %+v %q", ev[3].Geo, ev[3].IPAnonymized)
	}
	if ev[4].Geo != (pipeline.Geo{}) || ev[4].IPAnonymized != "10.1.2.0" {
		t.Errorf("private IP: null geo, anonymized IP; got %+v %q", ev[4].Geo, ev[4].IPAnonymized)
	}
	for _, i := range []int{5, 6} {
		if ev[i].Geo != (pipeline.Geo{}) || ev[i].IPAnonymized != "" {
			t.Errorf("event %d without a valid IP: %+v %q", i, ev[i].Geo, ev[i].IPAnonymized)
		}
	}
	if ev[7].Geo != (pipeline.Geo{}) {
		t.Errorf("unknown IP: %+v", ev[7].Geo)
	}
	st := db.Stats()
	if st.Lookups.Load() != 6 || st.InvalidIPs.Load() != 1 || st.Misses.Load() != 2 || st.BuildEpoch.Load() != 1700000000 {
		t.Errorf("stats lookups=%d invalid=%d misses=%d build=%d", st.Lookups.Load(), st.InvalidIPs.Load(), st.Misses.Load(), st.BuildEpoch.Load())
	}
}

func TestAnonymizeBits(t *testing.T) {
	db, _ := Open(testkit.GeoDB(t, testkit.GeoNetworks, 1), nil)
	defer db.Close()
	for _, tt := range []struct {
		o      Options
		ip     string
		want   string
		reject bool
	}{
		{Options{IPv4Bits: 16}, "81.2.69.142", "81.2.0.0", false},
		{Options{IPv4Bits: -1}, "81.2.69.142", "81.2.69.142", false},
		{Options{IPv6Bits: 64}, "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::", false},
		{Options{IPv6Bits: 128}, "2001:db8:1:2:3:4:5:6", "::", false},
		{Options{IPv4Bits: 33}, "", "", true},
		{Options{IPv6Bits: 129}, "", "", true},
	} {
		s, err := New(db, tt.o)
		if tt.reject {
			if err == nil {
				t.Errorf("%+v accepted", tt.o)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := run(t, s, tt.ip)[0].IPAnonymized; got != tt.want {
			t.Errorf("%+v %s: got %s, want %s", tt.o, tt.ip, got, tt.want)
		}
	}
}

func TestOpenRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	corrupt := dir + "/corrupt.mmdb"
	good, _ := os.ReadFile(testkit.GeoDB(t, testkit.GeoNetworks, 1))
	os.WriteFile(corrupt, good[:len(good)/3], 0o644)
	garbage := dir + "/garbage.mmdb"
	os.WriteFile(garbage, []byte("this is not a database"), 0o644)
	for _, p := range []string{dir + "/missing.mmdb", corrupt, garbage} {
		if _, err := Open(p, nil); err == nil {
			t.Errorf("%s opened", p)
		}
	}
}

// TestHotReload: a replaced file is swapped in; a corrupt replacement is
// refused and the old database keeps answering.
func TestHotReload(t *testing.T) {
	path := testkit.GeoDB(t, testkit.GeoNetworks, 100)
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, _ := New(db, Options{})
	if run(t, s, "81.2.1.1")[0].Geo.City != "London" {
		t.Fatal("before reload")
	}

	moved := append([]testkit.GeoRecord(nil), testkit.GeoNetworks...)
	moved[0].City = "Manchester"
	if err := testkit.WriteGeoDB(path, moved, 200); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.Reload(); !ok || err != nil {
		t.Fatalf("reload: %v %v", ok, err)
	}
	if got := run(t, s, "81.2.1.1")[0].Geo.City; got != "Manchester" || db.Stats().BuildEpoch.Load() != 200 {
		t.Errorf("after reload: %s build %d", got, db.Stats().BuildEpoch.Load())
	}
	if ok, _ := db.Reload(); ok {
		t.Error("reloaded an unchanged file")
	}

	// A corrupt replacement (a half-copied file) is refused.
	good, _ := os.ReadFile(path)
	if err := os.WriteFile(path, good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.Reload(); ok || err == nil || !strings.Contains(err.Error(), "keeping the loaded database") {
		t.Fatalf("corrupt replacement: %v %v", ok, err)
	}
	if got := run(t, s, "81.2.1.1")[0].Geo.City; got != "Manchester" {
		t.Errorf("old database not kept: %q", got)
	}
	if db.Stats().ReloadErrors.Load() != 1 || db.Stats().Reloads.Load() != 1 {
		t.Errorf("reloads %d errors %d", db.Stats().Reloads.Load(), db.Stats().ReloadErrors.Load())
	}
	// Overwriting the file in place (cp over it) cannot hurt the loaded
	// database: it maps a private copy.
	for _, n := range testkit.GeoNetworks {
		ip := netip.MustParsePrefix(n.Network).Addr().Next()
		if got := run(t, s, ip.String())[0].Geo.CountryCode; got != n.CountryCode && n.Network != "81.2.0.0/16" {
			t.Errorf("%s after in-place overwrite: %q", ip, got)
		}
	}
	os.Remove(path)
	if ok, err := db.Reload(); ok || err == nil {
		t.Errorf("missing file: %v %v", ok, err)
	}
}

// TestReloadWhileProcessing races reloads against lookups (run with -race).
func TestReloadWhileProcessing(t *testing.T) {
	path := testkit.GeoDB(t, testkit.GeoNetworks, 1)
	db, _ := Open(path, nil)
	defer db.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			testkit.WriteGeoDB(path, testkit.GeoNetworks, int64(2+i))
			db.Reload()
		}
	}()
	s, _ := New(db, Options{})
	for {
		select {
		case <-done:
			return
		default:
			if c := run(t, s, "92.184.1.1")[0].Geo.City; c != "Paris" {
				t.Fatalf("lookup during reload: %q", c)
			}
		}
	}
}

func BenchmarkGeoLookup(b *testing.B) {
	db, _ := Open(testkit.GeoDB(b, testkit.GeoNetworks, 1), nil)
	defer db.Close()
	s, _ := New(db, Options{})
	batch := &pipeline.Batch{Events: make([]pipeline.Event, 1000)}
	ips := []netip.Addr{netip.MustParseAddr("81.2.69.142"), netip.MustParseAddr("2001:db8:5:6::1"), netip.MustParseAddr("185.199.7.9")}
	b.ReportAllocs()
	for i := 0; i < b.N; i += len(batch.Events) {
		for j := range batch.Events {
			batch.Events[j] = pipeline.Event{IP: ips[j%len(ips)]}
		}
		s.Process(context.Background(), batch)
	}
}
