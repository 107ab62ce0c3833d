package filter

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/pipeline"
)

func rate(r float64) *float64 { return &r }

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string // "" valid
	}{
		{Config{DropBots: true}, ""},
		{Config{DropEvents: []string{"heartbeat"}}, ""},
		{Config{SampleRate: rate(0.25)}, ""},
		{Config{SampleRate: rate(1)}, ""},
		{Config{}, "drop_events: the filter has no rule"},
		{Config{SampleRate: rate(0)}, "sample_rate: 0 is not in (0, 1]"},
		{Config{SampleRate: rate(1.5)}, "sample_rate: 1.5 is not in (0, 1]"},
		{Config{DropEvents: []string{"a", ""}}, "drop_events[1]: must not be empty"},
	} {
		err := tc.c.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
}

func TestProcess(t *testing.T) {
	st := &Stats{}
	s, err := New(Config{DropEvents: []string{"heartbeat"}, DropBots: true}, st)
	if err != nil {
		t.Fatal(err)
	}
	b := &pipeline.Batch{Events: []pipeline.Event{
		{EventID: "1", EventName: "page_view"},
		{EventID: "2", EventName: "heartbeat"},
		{EventID: "3", EventName: "page_view", UA: pipeline.UserAgent{Known: true, IsBot: true}},
		{EventID: "4", EventName: "page_view", UA: pipeline.UserAgent{Known: true}},
		{EventID: "5", EventName: "heartbeat", State: pipeline.Rejected},
	}}
	if err := s.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	want := []pipeline.State{pipeline.Keep, pipeline.Dropped, pipeline.Dropped, pipeline.Keep, pipeline.Rejected}
	for i, e := range b.Events {
		if e.State != want[i] {
			t.Errorf("event %s: state %d, want %d", e.EventID, e.State, want[i])
		}
	}
	if st.ByName.Load() != 1 || st.Bots.Load() != 1 || st.Sampling.Load() != 0 {
		t.Errorf("stats %d %d %d", st.ByName.Load(), st.Bots.Load(), st.Sampling.Load())
	}
}

// TestSamplingIsAFunctionOfTheID: the same ids are kept by every stage at
// the same rate (replays, other replicas), about rate of them, and a lower
// rate keeps a subset of what a higher one keeps.
func TestSamplingIsAFunctionOfTheID(t *testing.T) {
	const n = 100_000
	a, _ := New(Config{SampleRate: rate(0.1)}, nil)
	again, _ := New(Config{SampleRate: rate(0.1)}, nil)
	half, _ := New(Config{SampleRate: rate(0.5)}, nil)
	all, _ := New(Config{SampleRate: rate(1)}, nil)
	kept := 0
	for i := range n {
		id := fmt.Sprintf("%08x-4f60-1d33-%d", i*2654435761, i)
		k := a.Keep(id)
		if k != again.Keep(id) {
			t.Fatalf("%s kept by one stage and not the other", id)
		}
		if k && !half.Keep(id) {
			t.Fatalf("%s kept at 10%% but not at 50%%", id)
		}
		if !all.Keep(id) {
			t.Fatalf("%s dropped at rate 1", id)
		}
		if k {
			kept++
		}
	}
	if kept < n*9/100 || kept > n*11/100 {
		t.Errorf("kept %d of %d at rate 0.1", kept, n)
	}
}
