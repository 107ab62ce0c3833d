package synth

import (
	"encoding/json"
	"net/netip"
	"sort"
	"testing"
)

// TestTrackerWorkloadShape: the tracker workload is what the benchmark
// says it is: over 100,000 networks of both families that do not overlap,
// several hundred user agents in use, a context object in most events,
// addresses inside the networks, sessions that repeat users and agents.
func TestTrackerWorkloadShape(t *testing.T) {
	nets := TrackerNetworks()
	var v4, v6 int
	sorted := make([]netip.Prefix, len(nets))
	for i, n := range nets {
		sorted[i] = n.Prefix
		if n.Prefix.Addr().Is4() {
			v4++
		} else {
			v6++
		}
		if n.Prefix != n.Prefix.Masked() {
			t.Fatalf("network %s is not aligned", n.Prefix)
		}
	}
	if len(nets) < 100_000 || v4 == 0 || v6 == 0 {
		t.Fatalf("%d networks (%d IPv4, %d IPv6)", len(nets), v4, v6)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Addr().Less(sorted[j].Addr()) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i-1].Overlaps(sorted[i]) {
			t.Fatalf("%s overlaps %s", sorted[i-1], sorted[i])
		}
	}
	inside := func(a netip.Addr) bool {
		i := sort.Search(len(sorted), func(i int) bool { return a.Less(sorted[i].Addr()) })
		return i > 0 && sorted[i-1].Contains(a)
	}
	g := NewTracker(TrackerOptions{Seed: 3, DupRate: 0.02, BadRate: 0.005})
	const n = 50_000
	uas, users := map[string]int{}, map[string]int{}
	var valid, withContext, withIP, ipInside, size int
	for range n {
		v, kind := g.Append(nil)
		size += len(v)
		if kind != Valid {
			continue
		}
		valid++
		var m map[string]any
		if err := json.Unmarshal(v, &m); err != nil {
			t.Fatalf("invalid JSON %s: %v", v, err)
		}
		if _, ok := m["context"].(map[string]any); ok {
			withContext++
		}
		if ua, ok := m["user_agent"].(string); ok {
			uas[ua]++
		}
		if u, ok := m["user_id"].(string); ok {
			users[u]++
		}
		if ip, ok := m["ip"].(string); ok {
			withIP++
			if inside(netip.MustParseAddr(ip)) {
				ipInside++
			}
		}
	}
	t.Logf("%d valid of %d, mean %d bytes, context %.1f%%, %d user agents, %d users, %.1f%% of addresses in a network",
		valid, n, size/n, 100*float64(withContext)/float64(valid), len(uas), len(users), 100*float64(ipInside)/float64(withIP))
	if float64(withContext) < 0.7*float64(valid) {
		t.Errorf("context in %d of %d events", withContext, valid)
	}
	if len(uas) < 300 {
		t.Errorf("%d distinct user agents", len(uas))
	}
	if float64(ipInside) < 0.9*float64(withIP) || ipInside == withIP {
		t.Errorf("%d of %d addresses inside a network (want most, not all)", ipInside, withIP)
	}
	if len(users) > valid/2 {
		t.Errorf("%d users for %d events: sessions should repeat them", len(users), valid)
	}
}
