package decode

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/sluicedata/sluice/internal/synth"
	"github.com/sluicedata/sluice/pipeline"
)

// agree checks the fast path against the general one on raw: when the
// fast path accepts, the general path must accept it too with every
// field of the event equal. It reports whether the fast path accepted.
func agree(t *testing.T, fast, general *Stage, raw []byte) bool {
	t.Helper()
	valid, control := scanText(raw)
	if !valid || control || len(raw) == 0 {
		return false
	}
	var ef, eg pipeline.Event
	ef.Raw, eg.Raw = raw, raw
	if !fast.decodeFast(&ef, raw) {
		if !reflect.DeepEqual(ef, pipeline.Event{Raw: raw}) {
			t.Fatalf("the fast path gave up on %q but changed the event: %+v", raw, ef)
		}
		return false
	}
	if reason := general.decodeGeneral(&eg, raw, control); reason != "" {
		t.Fatalf("the fast path accepted %q, the general path rejects it: %s", raw, reason)
	}
	if !reflect.DeepEqual(ef, eg) {
		t.Fatalf("the paths disagree on %q:\nfast    %+v\ngeneral %+v", raw, ef, eg)
	}
	return true
}

// TestFastPathAgrees: both workloads of the benchmark, the fixtures and
// records made to sit on the fast path's edges.
func TestFastPathAgrees(t *testing.T) {
	fast, general := New(nil), New(nil)
	var records [][]byte
	g := synth.New(synth.Options{Seed: 5, DupRate: 0.02, BadRate: 0.05})
	tr := synth.NewTracker(synth.TrackerOptions{Seed: 5, DupRate: 0.02, BadRate: 0.05})
	for range 20_000 {
		v, _ := g.Append(nil)
		records = append(records, v)
		v, _ = tr.Append(nil)
		records = append(records, v)
	}
	files, _ := filepath.Glob("testdata/*.json")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		records = append(records, bytes.TrimSpace(b))
	}
	base := `{"event_id":"e","event":"x","ts":1`
	for _, tail := range []string{
		`}`, ` }`, `,"a":1}`, `,"a":{}}`, `,"a":[]}`, `,"a":[ 1 , 2 ]}`, `,"a":{ "b" : [ true, false, null ] } }`,
		`,"a":-0}`, `,"a":-0.5e+10}`, `,"a":1E-3}`, `,"a":01}`, `,"a":1.}`, `,"a":.5}`, `,"a":-}`, `,"a":1e}`, `,"a":+1}`,
		`,"a":"\u00e9\n\"\\\/"}`, `,"a":"\u00g0"}`, `,"a":"\x"}`, `,"a":"\ud83d"}`, `,"a":"\`, `,"a":tru}`, `,"a":nul}`,
		`,"a":nulll}`, `,"a":1,}`, `,}`, `,"":1}`, `,"a":1} `, `,"a":1}x`, `,"a":1`, `,"a"1}`, `,"a":}`,
		`,"properties":{}}`, `,"properties":{"a" :1}}`, `,"properties":null}`, `,"properties":[]}`, `,"properties":"{}"}`,
		`,"properties":{"x":[[[[[[[[[[1]]]]]]]]]]}}`, `,"user_id":""}`, `,"user_id":0}`, `,"user_id":-12}`, `,"user_id":1.0}`,
		`,"user_id":12e2}`, `,"user_id":null}`, `,"user_id":"\u0041"}`, `,"ip":"::ffff:1.2.3.4"}`, `,"ip":"fe80::1%eth0"}`,
		`,"ip":"999.1.1.1"}`, `,"ip":""}`, `,"ip":null}`, `,"ip":7}`, `,"app_id":"","platform":null}`, `,"page_url":"a\/b"}`,
		`,"event":"y"}`, `,"session_id":null,"session_id":"s"}`, `,"x":1,"x":2}`, `,"ev\u0065nt":"y"}`,
	} {
		records = append(records, []byte(base+tail))
	}
	for _, r := range []string{
		`{"event_id":"e","event":"x","ts":"2026-03-01T10:00:00.5+01:00"}`, `{"event_id":"e","event":"x","ts":"2026-03-01"}`,
		`{"event_id":"e","event":"x","ts":99999999999999999999}`, `{"event_id":"e","event":"x","ts":007}`,
		`{"event_id":"e","event":"x","ts":null}`, `{"event_id":"","event":"x","ts":1}`, `{"event_id":"e","event":"","ts":1}`,
		`{"event":"x","ts":1}`, `{}`, ` {"event_id":"e","event":"x","ts":1}`, `[]`, `"e"`, `{"event_id":"e" "event":"x","ts":1}`,
	} {
		records = append(records, []byte(r))
	}
	accepted := 0
	for _, r := range records {
		if agree(t, fast, general, r) {
			accepted++
		}
	}
	t.Logf("%d of %d records on the fast path", accepted, len(records))
	if accepted < len(records)*9/10 {
		t.Errorf("only %d of %d records on the fast path", accepted, len(records))
	}
}

// FuzzFastPathAgrees: whatever the fast path accepts, the general path
// accepts with the same event.
func FuzzFastPathAgrees(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(bytes.TrimSpace(b))
	}
	g := synth.NewTracker(synth.TrackerOptions{Seed: 9, BadRate: 0.1})
	for range 20 {
		v, _ := g.Append(nil)
		f.Add(v)
	}
	f.Add([]byte(`{"event_id":"e","event":"x","ts":1,"properties":{"a":[1,{"b":"\u00e9"}]},"z":null}`))
	fast, general := New(nil), New(nil)
	f.Fuzz(func(t *testing.T, raw []byte) {
		agree(t, fast, general, raw)
	})
}

// TestQuoteOrBackslash checks the scan against a byte-by-byte one at every
// start, over strings up to 80 bytes with the quote or backslash at
// random positions around the eight-byte steps and the byte-wise tail.
func TestQuoteOrBackslash(t *testing.T) {
	naive := func(b []byte, j int) int {
		for ; j < len(b); j++ {
			if b[j] == '"' || b[j] == '\\' {
				return j
			}
		}
		return -1
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte(`abc/:; {}"\`)
	for n := range 80 {
		for range 40 {
			b := make([]byte, n)
			for i := range b {
				b[i] = 'a' + byte(rng.IntN(26))
			}
			// Zero to three special bytes at random places.
			for range rng.IntN(4) {
				if n > 0 {
					b[rng.IntN(n)] = alphabet[rng.IntN(len(alphabet))]
				}
			}
			for j := 0; j <= n; j++ {
				if got, want := quoteOrBackslash(b, j), naive(b, j); got != want {
					t.Fatalf("quoteOrBackslash(%q, %d) = %d, want %d", b, j, got, want)
				}
			}
		}
	}
}
