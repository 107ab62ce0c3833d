package pipeline

import (
	"testing"

	"github.com/sluicedata/sluice/internal/arena"
)

// TestResetBeginsTheBatchText: after Reset, text kept in the batch's arena
// costs no allocation and lives until the next Reset; a batch never reset
// (a literal) gives each string an allocation of its own, and a nil arena
// (a stage's method called outside a batch) does too.
func TestResetBeginsTheBatchText(t *testing.T) {
	var kept string // escapes (keptText), as text kept for an event does
	defer func() { keptText = kept }()
	src := []byte("page_view")
	var lit Batch
	if n := testing.AllocsPerRun(10, func() { kept = lit.Text.Keep(src) }); n != 1 {
		t.Errorf("Keep in a batch never reset: %.0f allocations, want 1", n)
	}
	var none *arena.Text
	if got := none.Keep(src); got != "page_view" {
		t.Errorf("Keep on a nil arena: %q", got)
	}
	var b Batch
	b.Reset()
	b.Text.Keep(make([]byte, 4096)) // grown once
	b.Reset()
	if n := testing.AllocsPerRun(10, func() {
		b.Reset()
		for range 100 {
			kept = b.Text.Keep(src)
		}
	}); n != 0 && !arena.Poisoned() {
		t.Errorf("Keep after Reset: %.0f allocations, want 0", n)
	}
	b.Reset()
	mine := b.Text.Keep(src)
	src[0] = 'P'
	if mine != "page_view" {
		t.Errorf("kept text changed with its source: %q", mine)
	}
}

var keptText string
