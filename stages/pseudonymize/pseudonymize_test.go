package pseudonymize

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/internal/arena"
	"github.com/sluicedata/sluice/pipeline"
)

const secret = "0123456789abcdef-test-key"

func want(key, id string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil))
}

func TestLoadKeys(t *testing.T) {
	env := map[string]string{"K1": secret, "SHORT": "abc", "NL": secret + "\n"}
	files := map[string]string{"/s/k2": secret + "-two\n", "/s/k3": secret + "\n\n"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	read := func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, errors.New("open " + p + ": no such file")
	}
	keys, err := LoadKeys([]KeySpec{{ID: "k1", Env: "K1"}, {ID: "k2", File: "/s/k2"}, {ID: "k3", File: "/s/k3"}, {ID: "nl", Env: "NL"}}, lookup, read)
	if err != nil {
		t.Fatal(err)
	}
	if string(keys["k1"]) != secret || string(keys["k2"]) != secret+"-two" || string(keys["k3"]) != secret+"\n" || string(keys["nl"]) != secret+"\n" {
		t.Errorf("key bytes: env exact, file less one trailing newline: %q", keys)
	}
	_, err = LoadKeys([]KeySpec{{ID: "a", Env: "MISSING"}, {ID: "b", Env: "SHORT"}, {ID: "c", File: "/nope"}, {ID: "d"}, {Env: "K1"}, {ID: "k1", Env: "K1"}, {ID: "k1", Env: "K1"}}, lookup, read)
	for _, w := range []string{"key a: environment variable MISSING is not set", "key b: 3 bytes", "key c:", "key d: set exactly one", "needs an id", "key k1: configured twice"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in %v", w, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Error("key material in an error")
	}
}

func TestProcess(t *testing.T) {
	s, err := New(Options{Keys: map[string][]byte{"k1": []byte(secret), "k0": []byte("old-key-old-key-old")}, Active: "k1",
		Fields: []string{"session_id", "properties.email", "properties.account", "properties.nested"}})
	if err != nil {
		t.Fatal(err)
	}
	b := &pipeline.Batch{Events: []pipeline.Event{
		{UserID: "user-42", SessionID: "s-1", Present: pipeline.HasUserID | pipeline.HasSessionID, Properties: `{"email":"a@b.c","account":12345,"nested":{"x":1},"keep":"me"}`},
		{UserID: "12345678901234567890", Present: pipeline.HasUserID},
		{},
		{UserID: "user-42", Present: pipeline.HasUserID, State: pipeline.Rejected},
	}}
	if err := s.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	e := b.Events[0]
	if e.UserPseudoID != want(secret, "user-42") || e.PseudoKeyID != "k1" {
		t.Errorf("pseudonym %s key %s", e.UserPseudoID, e.PseudoKeyID)
	}
	if e.UserID != "" || e.Has(pipeline.HasUserID) {
		t.Error("raw user id kept on the event")
	}
	if e.SessionID != want(secret, "s-1") {
		t.Errorf("session %s", e.SessionID)
	}
	wantProps := `{"email":"` + want(secret, "a@b.c") + `","account":"` + want(secret, "12345") + `","nested":null,"keep":"me"}`
	if e.Properties != wantProps {
		t.Errorf("properties\n got %s\nwant %s", e.Properties, wantProps)
	}
	if b.Events[1].UserPseudoID != want(secret, "12345678901234567890") {
		t.Error("integer id must hash its decimal digits")
	}
	if b.Events[2].UserPseudoID != "" || b.Events[2].PseudoKeyID != "" {
		t.Error("no user id: null pseudonym and key id")
	}
	if b.Events[3].UserPseudoID != "" {
		t.Error("rejected events are not processed")
	}
}

func TestOptionsValidate(t *testing.T) {
	_, err := New(Options{Keys: map[string][]byte{"k1": []byte(secret)}, Active: "k2", Fields: []string{"ip", "properties."}})
	for _, w := range []string{`active key "k2"`, `field "ip"`, `field "properties."`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in %v", w, err)
		}
	}
}

// batch returns n events with distinct user ids (and session ids).
func batch(n, seed int) *pipeline.Batch {
	b := &pipeline.Batch{}
	b.Reset()
	b.Events = make([]pipeline.Event, n)
	for i := range b.Events {
		b.Events[i] = pipeline.Event{UserID: fmt.Sprintf("user-%d-%d", seed, i), SessionID: fmt.Sprintf("s-%d", i), Present: pipeline.HasUserID | pipeline.HasSessionID}
	}
	return b
}

// TestPseudonymsOfABatch: every pseudonym of a batch is the HMAC of its
// id, Process allocates nothing once its arena has grown, and a pseudonym
// got alone is a string of its own that later batches do not touch.
func TestPseudonymsOfABatch(t *testing.T) {
	s, _ := New(Options{Keys: map[string][]byte{"k": []byte(secret)}, Active: "k", Fields: []string{"session_id"}})
	alone := s.Pseudonym("user-alone")
	for round := range 3 {
		b := batch(300, round)
		s.Process(context.Background(), b)
		for i, e := range b.Events {
			if w := want(secret, fmt.Sprintf("user-%d-%d", round, i)); e.UserPseudoID != w {
				t.Fatalf("round %d event %d: %q, want %q", round, i, e.UserPseudoID, w)
			}
			if w := want(secret, fmt.Sprintf("s-%d", i)); e.SessionID != w {
				t.Fatalf("round %d event %d: session %q, want %q", round, i, e.SessionID, w)
			}
		}
	}
	if alone != want(secret, "user-alone") {
		t.Errorf("a pseudonym got alone changed: %q", alone)
	}
	if arena.Poisoned() {
		return // the race detector's arena is new for every batch
	}
	b := batch(200, 9)
	if n := testing.AllocsPerRun(100, func() {
		for i := range b.Events {
			b.Events[i].Present |= pipeline.HasUserID
		}
		b.Text.Begin() // the batch's next use
		s.Process(context.Background(), b)
	}); n != 0 {
		t.Errorf("Process of 200 events allocates %.1f times", n)
	}
}

// TestKeptPseudonymIsPoisoned: under the race detector (make test) a
// pseudonym kept past its batch reads as 0xFF bytes once the batch is
// reset for its next use.
func TestKeptPseudonymIsPoisoned(t *testing.T) {
	if !arena.Poisoned() {
		t.Skip("only under -race")
	}
	s, _ := New(Options{Keys: map[string][]byte{"k": []byte(secret)}, Active: "k"})
	b := batch(1, 0)
	s.Process(context.Background(), b)
	kept := b.Events[0].UserPseudoID
	b.Reset()
	b.Events = append(b.Events, batch(1, 1).Events...)
	s.Process(context.Background(), b)
	if kept != strings.Repeat("\xff", 64) {
		t.Errorf("kept pseudonym %q", kept)
	}
}

// BenchmarkProcess: ns/op is per event of 256 with distinct ids.
func BenchmarkProcess(b *testing.B) {
	s, _ := New(Options{Keys: map[string][]byte{"k": []byte(secret)}, Active: "k"})
	bt := batch(256, 0)
	b.ReportAllocs()
	for b.Loop() {
		for i := range bt.Events {
			bt.Events[i].Present |= pipeline.HasUserID
		}
		s.Process(context.Background(), bt)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/256, "ns/event")
}
