package synth

import (
	"encoding/json"
	"testing"
)

func TestGeneratorShares(t *testing.T) {
	g := New(Options{Seed: 7, DupRate: 0.02, BadRate: 0.005})
	counts := map[Kind]int{}
	var size int
	const n = 20000
	var buf []byte
	for range n {
		var k Kind
		buf, k = g.Append(buf[:0])
		counts[k]++
		size += len(buf)
		if k != Bad && !json.Valid(buf) {
			t.Fatalf("kind %d record is not JSON: %s", k, buf)
		}
	}
	if d := float64(counts[Duplicate]) / n; d < 0.015 || d > 0.025 {
		t.Errorf("duplicate share %.4f, want about 0.02", d)
	}
	if b := float64(counts[Bad]) / n; b < 0.003 || b > 0.008 {
		t.Errorf("bad share %.4f, want about 0.005", b)
	}
	t.Logf("mean record %d bytes", size/n)
}

func TestGeneratorDeterministic(t *testing.T) {
	a, b := New(Options{Seed: 3, DupRate: 0.1, BadRate: 0.1}), New(Options{Seed: 3, DupRate: 0.1, BadRate: 0.1})
	for range 1000 {
		x, _ := a.Append(nil)
		y, _ := b.Append(nil)
		if string(x) != string(y) {
			t.Fatalf("same seed, different records:\n%s\n%s", x, y)
		}
	}
}

func TestReferenceWorkload(t *testing.T) {
	uas, nets := ReferenceUserAgents(), ReferenceNetworks()
	distinct := map[string]bool{}
	for _, u := range uas {
		distinct[u] = true
	}
	if len(distinct) < 300 || len(nets) != 4096 {
		t.Errorf("%d distinct user agents, %d networks", len(distinct), len(nets))
	}
	g := New(Options{Seed: 1, Reference: true, DupRate: 0.02, BadRate: 0.005})
	var size int
	for range 10000 {
		v, _ := g.Append(nil)
		size += len(v)
	}
	t.Logf("reference record: %d bytes on average", size/10000)
}
