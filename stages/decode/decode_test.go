package decode

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sluicedata/sluice/internal/arena"
	"github.com/sluicedata/sluice/internal/synth"
	"github.com/sluicedata/sluice/pipeline"
)

func decodeOne(t testing.TB, raw string) (pipeline.Event, string) {
	t.Helper()
	e := pipeline.Event{Raw: []byte(raw)}
	return e, New(nil).Decode(&e)
}

func TestDecodeValid(t *testing.T) {
	tests := []struct {
		name  string
		raw   string
		check func(t *testing.T, e pipeline.Event)
	}{
		{"minimal with RFC 3339", `{"event_id":"a","event":"page_view","ts":"2026-03-01T12:00:00Z"}`, func(t *testing.T, e pipeline.Event) {
			eq(t, e.EventID, "a")
			eq(t, e.EventName, "page_view")
			eq(t, e.EventTime, int64(1772366400000))
			eq(t, e.Present, pipeline.Fields(0))
			eq(t, e.Extra, "")
			eq(t, e.Properties, "")
		}},
		{"fraction finer than ms is truncated", `{"event_id":"a","event":"x","ts":"2026-03-01T12:00:00.123987654+01:00"}`, func(t *testing.T, e pipeline.Event) {
			eq(t, e.EventTime, int64(1772362800123))
		}},
		{"epoch ms integer", `{"event_id":"a","event":"x","ts":1772366400123}`, func(t *testing.T, e pipeline.Event) {
			eq(t, e.EventTime, int64(1772366400123))
		}},
		{"integer user id keeps exact digits", `{"event_id":"a","event":"x","ts":1,"user_id":12345678901234567890123}`, func(t *testing.T, e pipeline.Event) {
			eq(t, e.UserID, "12345678901234567890123")
			eq(t, e.Present, pipeline.HasUserID)
		}},
		{"negative integer user id", `{"event_id":"a","event":"x","ts":1,"user_id":-42}`, func(t *testing.T, e pipeline.Event) {
			eq(t, e.UserID, "-42")
		}},
		{"string user id as is", `{"event_id":"a","event":"x","ts":1,"user_id":"U-\u00e9"}`, func(t *testing.T, e pipeline.Event) {
			eq(t, e.UserID, "U-é")
		}},
		{"explicit null is absent", `{"event_id":"a","event":"x","ts":1,"user_id":null,"ip":null,"properties":null,"session_id":null,"app_id":null,"platform":null,"page_url":null,"referrer":null,"user_agent":null}`, func(t *testing.T, e pipeline.Event) {
			eq(t, e.Present, pipeline.Fields(0))
			eq(t, e.IP.IsValid(), false)
			eq(t, e.IPInvalid, false)
			eq(t, e.Properties, "")
		}},
		{"empty strings are values", `{"event_id":"a","event":"x","ts":1,"user_id":"","session_id":"","app_id":"","platform":"","page_url":"","referrer":"","user_agent":"","properties":{}}`, func(t *testing.T, e pipeline.Event) {
			eq(t, e.Present, pipeline.HasUserID|pipeline.HasSessionID|pipeline.HasAppID|pipeline.HasPlatform|
				pipeline.HasPageURL|pipeline.HasReferrer|pipeline.HasUserAgent|pipeline.HasProperties)
			eq(t, e.UserID+e.SessionID+e.AppID+e.Platform+e.PageURL+e.Referrer+e.UserAgent, "")
			eq(t, e.Properties, "{}")
			eq(t, e.Extra, "")
		}},
		{"unknown field makes extra present", `{"event_id":"a","event":"x","ts":1,"z":""}`, func(t *testing.T, e pipeline.Event) {
			eq(t, e.Present, pipeline.HasExtra)
			eq(t, e.Extra, `{"z":""}`)
		}},
		{"whitespace and escaped control characters", "{\n\t\"event_id\":\"a\\u0000\\n\",\r\n\"event\":\"x\",\"ts\":1}\n", func(t *testing.T, e pipeline.Event) {
			eq(t, e.EventID, "a\x00\n")
		}},
		{"all optional fields", `{"event_id":"a","event":"x","ts":1,"session_id":"s","ip":"203.0.113.9","user_agent":"UA/1","app_id":"app","platform":"web","page_url":"https://e.com/p","referrer":"https://r.com/","properties":{"a":[1,2,{"b":null}],"c":"d"}}`, func(t *testing.T, e pipeline.Event) {
			eq(t, e.SessionID, "s")
			eq(t, e.IP.String(), "203.0.113.9")
			eq(t, e.UserAgent, "UA/1")
			eq(t, e.AppID, "app")
			eq(t, e.Platform, "web")
			eq(t, e.PageURL, "https://e.com/p")
			eq(t, e.Referrer, "https://r.com/")
			eq(t, e.Properties, `{"a":[1,2,{"b":null}],"c":"d"}`)
		}},
		{"IPv6 and v4-mapped", `{"event_id":"a","event":"x","ts":1,"ip":"::ffff:198.51.100.7"}`, func(t *testing.T, e pipeline.Event) {
			eq(t, e.IP.String(), "198.51.100.7")
		}},
		{"invalid ip keeps the event", `{"event_id":"a","event":"x","ts":1,"ip":"999.1.1.1"}`, func(t *testing.T, e pipeline.Event) {
			eq(t, e.IP.IsValid(), false)
			eq(t, e.IPInvalid, true)
		}},
		{"unknown fields go to extra", `{"z":1,"event_id":"a","event":"x","ts":1,"we\"ird\n":{"k":[true]},"n":null}`, func(t *testing.T, e pipeline.Event) {
			eq(t, e.Extra, `{"z":1,"we\"ird\n":{"k":[true]},"n":null}`)
			var m map[string]any
			if err := json.Unmarshal([]byte(e.Extra), &m); err != nil {
				t.Fatalf("extra is not JSON: %v", err)
			}
			if len(m) != 3 {
				t.Errorf("extra has %d keys, want 3", len(m))
			}
		}},
		{"escaped strings are unescaped", `{"event_id":"a\"b","event":"\u0063lick","ts":1}`, func(t *testing.T, e pipeline.Event) {
			eq(t, e.EventID, `a"b`)
			eq(t, e.EventName, "click")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, reason := decodeOne(t, tt.raw)
			if reason != "" {
				t.Fatalf("rejected: %s", reason)
			}
			tt.check(t, e)
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct{ raw, want string }{
		{``, "empty record value"},
		{"{\"event_id\":\"a\x00b\",\"event\":\"x\",\"ts\":1}", "invalid JSON: unescaped control character U+0000 in a string at offset 14"},
		{"{\"event_id\":\"a\",\"event\":\"x\ty\",\"ts\":1}", "unescaped control character U+0009"},
		{"{\"event_id\":\"a\",\"event\":\"x\",\"ts\":1,\"p\":\"line\nbreak\"}", "unescaped control character U+000A"},
		{"{\"event_id\":\"a\",\"event\":\"x\",\"ts\":1,\"k\x1f\":1}", "unescaped control character U+001F"},
		{"{\"event_id\":\"a\",\"event\":\"x\",\"ts\":1,\"p\":\"\\\x01\"}", "unescaped control character U+0001"},
		{"\xff\xfe{}", "record value is not valid UTF-8"},
		{`not json`, "invalid JSON"},
		{`{"event_id":"a"`, "invalid JSON"},
		{`[1,2]`, "not a JSON object (got array)"},
		{`{"event_id":"a","event":"x","ts":1,"n":007}`, "invalid JSON"},
		{`{"event_id":"a","event":"x","ts":1,"properties":{"n":[1,007]}}`, "invalid JSON in properties"},
		{`{"event_id":"a","event":"x","ts":1,"n":NaN}`, "invalid JSON"},
		{`{"event_id":"a","event":"x","ts":007}`, "non-integer number"},
		{`{"event_id":"a","event":"x","ts":NaN}`, "ts:"},
		{`{"event_id":"a","event":"x","ts":1,"user_id":0042}`, "user_id: want string or integer"},
		{`"str"`, "not a JSON object (got string)"},
		{`{"event":"x","ts":1}`, "missing required field event_id"},
		{`{"event_id":null,"event":"x","ts":1}`, "missing required field event_id"},
		{`{"event_id":"","event":"x","ts":1}`, "event_id is empty"},
		{`{"event_id":7,"event":"x","ts":1}`, "event_id: want string, got number"},
		{`{"event_id":"a","ts":1}`, "missing required field event"},
		{`{"event_id":"a","event":["x"],"ts":1}`, "event: want string, got array"},
		{`{"event_id":"a","event":"x"}`, "missing required field ts"},
		{`{"event_id":"a","event":"x","ts":"2026-13-01"}`, `ts: "2026-13-01" is not an RFC 3339 timestamp`},
		{`{"event_id":"a","event":"x","ts":1.5}`, "ts: want RFC 3339 string or integer epoch milliseconds, got non-integer number"},
		{`{"event_id":"a","event":"x","ts":1e12}`, "non-integer number"},
		{`{"event_id":"a","event":"x","ts":99999999999999999999}`, "ts: epoch milliseconds out of range"},
		{`{"event_id":"a","event":"x","ts":true}`, "ts: want RFC 3339 string or integer epoch milliseconds, got true"},
		{`{"event_id":"a","event":"x","ts":1,"user_id":1.5}`, "user_id: want string or integer, got non-integer number"},
		{`{"event_id":"a","event":"x","ts":1,"user_id":false}`, "user_id: want string or integer, got false"},
		{`{"event_id":"a","event":"x","ts":1,"user_id":{"id":1}}`, "user_id: want string or integer, got object"},
		{`{"event_id":"a","event":"x","ts":1,"ip":17}`, "ip: want string, got number"},
		{`{"event_id":"a","event":"x","ts":1,"session_id":{}}`, "session_id: want string, got object"},
		{`{"event_id":"a","event":"x","ts":1,"properties":[1]}`, "properties: want object, got array"},
		{`{"event_id":"a","event":"x","ts":1,"properties":"{}"}`, "properties: want object, got string"},
		{`{"event_id":"a","event_id":"b","event":"x","ts":1}`, "duplicate field event_id"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			_, reason := decodeOne(t, tt.raw)
			if reason == "" {
				t.Fatalf("accepted, want rejection %q", tt.want)
			}
			if !strings.Contains(reason, tt.want) {
				t.Errorf("reason %q, want it to contain %q", reason, tt.want)
			}
		})
	}
}

// TestRejectReasons checks what Process records for the records that
// used to get long or shared reasons: a tombstone has its own reason and
// count, distinct from an empty value, and no reason is over 300 bytes.
func TestRejectReasons(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 400) + "1" + strings.Repeat("}", 400)
	b := &pipeline.Batch{Events: []pipeline.Event{
		{Raw: nil},
		{Raw: []byte{}},
		{Raw: []byte(deep)},
		{Raw: []byte(strings.Repeat("[", 20000))},
		{Raw: []byte(`{"event_id":"a","event":"x","ts":"` + strings.Repeat("é", 400) + `"}`)},
	}}
	stats := &Stats{}
	if err := New(stats).Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	eq(t, b.Events[0].RejectReason, "tombstone: record value is null")
	eq(t, b.Events[1].RejectReason, "empty record value")
	eq(t, stats.Tombstones.Load(), int64(1))
	eq(t, stats.EmptyValues.Load(), int64(1))
	for i, e := range b.Events {
		if e.State != pipeline.Rejected {
			t.Fatalf("event %d not rejected", i)
		}
		if len(e.RejectReason) > pipeline.MaxReasonLen || !utf8.ValidString(e.RejectReason) {
			t.Errorf("event %d: reason of %d bytes (valid UTF-8: %v)", i, len(e.RejectReason), utf8.ValidString(e.RejectReason))
		}
		t.Logf("event %d: %s", i, e.RejectReason)
	}
	for _, e := range b.Events[2:4] {
		if !strings.HasPrefix(e.RejectReason, "invalid JSON: cannot parse JSON: ") || !strings.Contains(e.RejectReason, "it exceeds 300") {
			t.Errorf("deep nesting: %q, want the parser's message start and its cause", e.RejectReason)
		}
	}
}

// TestProcessMarksRejected checks the Stage contract: bad records are
// marked, good ones decoded, events already rejected are left alone.
func TestProcessMarksRejected(t *testing.T) {
	b := &pipeline.Batch{Events: []pipeline.Event{
		{Raw: []byte(`{"event_id":"a","event":"x","ts":1}`)},
		{Raw: []byte(`nope`)},
		{Raw: []byte(`{"event_id":"c","event":"x","ts":1}`), State: pipeline.Dropped},
	}}
	if err := New(nil).Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	eq(t, b.Events[0].State, pipeline.Keep)
	eq(t, b.Events[0].EventID, "a")
	eq(t, b.Events[1].State, pipeline.Rejected)
	eq(t, b.Events[1].RejectStage, "decode")
	eq(t, b.Events[2].EventID, "")
}

// TestDecodeFixtures decodes testdata/*.json: files named valid-* must
// decode, invalid-* must be rejected.
func TestDecodeFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, reason := decodeOne(t, strings.TrimSpace(string(raw)))
		valid := strings.HasPrefix(filepath.Base(f), "valid-")
		if valid && reason != "" {
			t.Errorf("%s: rejected: %s", f, reason)
		}
		if !valid && reason == "" {
			t.Errorf("%s: accepted, want rejected", f)
		}
	}
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte(`{"event_id":"a","event":"x","ts":1,"user_id":123}`))
	f.Add([]byte(`{"event_id":"a","event":"x","ts":"2026-01-01T00:00:00.1Z","x":{"y":[1,"\u0000"]}}`))
	s := New(nil)
	f.Fuzz(func(t *testing.T, raw []byte) {
		e := pipeline.Event{Raw: raw}
		reason := s.Decode(&e)
		if reason != "" {
			if !utf8.ValidString(reason) {
				t.Fatalf("reason is not UTF-8: %q", reason)
			}
			return
		}
		// An accepted record has its required fields and JSON text
		// fields that parse.
		if e.EventID == "" || e.EventName == "" {
			t.Fatalf("accepted without required fields: %q", raw)
		}
		for _, js := range []string{e.Properties, e.Extra} {
			if js != "" && !json.Valid([]byte(js)) {
				t.Fatalf("invalid JSON text %q from %q", js, raw)
			}
		}
		if !utf8.ValidString(e.EventID) || !utf8.ValidString(e.Extra) {
			t.Fatalf("invalid UTF-8 from %q", raw)
		}
		// Decoding the same input again gives the same event.
		e2 := pipeline.Event{Raw: raw}
		if s.Decode(&e2) != "" || e2.EventID != e.EventID || e2.Extra != e.Extra || e2.EventTime != e.EventTime {
			t.Fatalf("not deterministic for %q", raw)
		}
	})
}

func eq[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestScanText holds the one-pass scan equal to utf8.Valid and a byte loop
// on random text: ASCII, control bytes and multi-byte runes at every
// position relative to the 32-byte blocks.
func TestScanText(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	pieces := []string{"a", "{\"k\":1}", "\x00", "\t", "\n", "\x1f", " ", "é", "東", "\U0001F600", "\xff", "\xe6\x9d", "~", "\x7f"}
	for range 20000 {
		var b []byte
		for range r.IntN(120) {
			b = append(b, pieces[r.IntN(len(pieces))]...)
		}
		wantCtl := false
		for _, c := range b {
			wantCtl = wantCtl || c < 0x20
		}
		valid, ctl := scanText(b)
		if valid != utf8.Valid(b) || (valid && ctl != wantCtl) {
			t.Fatalf("scanText(%q) = %v, %v; want %v, %v", b, valid, ctl, utf8.Valid(b), wantCtl)
		}
	}
}

// TestDecodeKeepsNoTextOfTheRecord: ts and ip are parsed without copies;
// nothing of the event may change when the record's buffer is reused.
func TestDecodeKeepsNoTextOfTheRecord(t *testing.T) {
	raw := []byte(`{"event_id":"e1","event":"page_view","ts":"2026-03-01T10:00:00.123Z","ip":"fe80::1%eth0","user_id":"u"}`)
	s := New(nil)
	e := pipeline.Event{Raw: raw}
	if r := s.Decode(&e); r != "" {
		t.Fatal(r)
	}
	for i := range raw {
		raw[i] = 'x'
	}
	if e.IP.String() != "fe80::1%eth0" || e.IP.Zone() != "eth0" || e.EventTime != 1772359200123 || e.EventID != "e1" || e.UserID != "u" {
		t.Errorf("event changed with the record's buffer: %v %q %d %q %q", e.IP, e.IP.Zone(), e.EventTime, e.EventID, e.UserID)
	}
}

// TestProcessSharesOneArena: Process gives every event of a batch text
// from one buffer, the batch's, reused by the batch's next use (no
// allocation per event), with the same values Decode alone gives; a
// batch's text stays intact while the batch is processed.
func TestProcessSharesOneArena(t *testing.T) {
	g := synth.New(synth.Options{Seed: 7})
	s := New(nil)
	mk := func(n int) *pipeline.Batch {
		b := &pipeline.Batch{}
		b.Reset()
		for range n {
			v, _ := g.Append(nil)
			b.Events = append(b.Events, pipeline.Event{Raw: v})
		}
		return b
	}
	for round := range 3 {
		b := mk(200)
		want := make([]pipeline.Event, len(b.Events))
		for i, e := range b.Events {
			want[i] = pipeline.Event{Raw: e.Raw}
			New(nil).Decode(&want[i])
		}
		if err := s.Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		for i := range b.Events {
			got, w := b.Events[i], want[i]
			got.Raw, w.Raw = nil, nil
			if !reflect.DeepEqual(got, w) {
				t.Fatalf("round %d event %d: Process gave\n%+v\nDecode alone\n%+v", round, i, got, w)
			}
		}
	}
	b := mk(200)
	if n := testing.AllocsPerRun(20, func() {
		for i := range b.Events {
			b.Events[i] = pipeline.Event{Raw: b.Events[i].Raw}
		}
		b.Text.Begin() // the batch's next use
		s.Process(context.Background(), b)
	}); n > 2 {
		t.Errorf("Process of 200 events allocates %.0f times", n)
	}
}

// TestKeptTextIsPoisoned: under the race detector (make test) text kept
// past its batch reads as 0xFF bytes once the batch is reset for its next
// use, in both decode stages.
func TestKeptTextIsPoisoned(t *testing.T) {
	if !arena.Poisoned() {
		t.Skip("only under -race")
	}
	s := New(nil)
	b := &pipeline.Batch{}
	b.Reset()
	b.Events = append(b.Events, pipeline.Event{Raw: []byte(`{"event_id":"e1","event":"page_view","ts":1}`)})
	s.Process(context.Background(), b)
	kept := b.Events[0].EventName
	b.Reset()
	b.Events = append(b.Events, pipeline.Event{Raw: []byte(`{"event_id":"e2","event":"click","ts":2}`)})
	s.Process(context.Background(), b)
	if b.Events[0].EventName != "click" || kept != "\xff\xff\xff\xff\xff\xff\xff\xff\xff" {
		t.Errorf("next batch %q, kept text %q", b.Events[0].EventName, kept)
	}

	sp := NewSnowplow(nil)
	b.Reset()
	b.Events = append(b.Events, pipeline.Event{Raw: payload("e=pv&eid=e1&p=web", "")})
	sp.Process(context.Background(), b)
	kept = b.Events[0].EventID
	b.Reset()
	b.Events = append(b.Events, pipeline.Event{Raw: payload("e=pv&eid=e2&p=web", "")})
	sp.Process(context.Background(), b)
	if b.Events[0].EventID != "e2" || kept != "\xff\xff" {
		t.Errorf("snowplow: next batch %q, kept text %q", b.Events[0].EventID, kept)
	}
}
