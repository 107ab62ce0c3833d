// Package arena holds the text stages give a batch's events: one buffer
// per batch (pipeline.Batch.Text), shared by its stages in turn and reused
// by the batch's next use, instead of one allocation per string. Text kept
// this way is valid only while its batch is processed (the lifetime
// pipeline.Event states for all event text): whatever keeps it longer
// copies it.
package arena

import "unsafe"

// Text is a batch's arena: Begin when the batch starts (Batch.Reset), Keep
// for each string of the batch, by any of its stages. Outside a batch (a
// stage's method called alone: a nil Text, or one never begun) Keep
// returns a string of its own. The zero value is ready to use; a Text
// belongs to one batch and is not safe for concurrent use.
type Text struct {
	buf     []byte
	inBatch bool
}

// MaxKept: an arena that grew past it (a batch of very large events) is
// not kept for the next batch.
const MaxKept = 1 << 20

// poison: under the race detector (make test) Begin overwrites the
// previous batch's arena and starts a new one, so a stage, sink or test
// that keeps an event's text past its batch sees it broken at once
// (poison_race.go); benchmarks and releases do not pay for it.
var poison = false

// Poisoned reports whether Begin overwrites the previous batch's text
// (builds with the race detector).
func Poisoned() bool { return poison }

// Begin starts a batch: the text kept since the last Begin is given up.
func (a *Text) Begin() {
	if cap(a.buf) > MaxKept {
		a.buf = nil
	}
	if poison && cap(a.buf) > 0 {
		// Text kept past its batch reads as 0xFF bytes (never UTF-8),
		// not as whatever the next batch put there: the old arena is
		// overwritten and the next batch gets a new one.
		old := a.buf[:cap(a.buf)]
		for i := range old {
			old[i] = 0xff
		}
		a.buf = make([]byte, 0, cap(old))
	}
	a.buf, a.inBatch = a.buf[:0], true
}

// Keep returns b as a string: in the arena during a batch, else a copy of
// its own. Growth leaves the batch's earlier text in the old array, which
// nothing writes again.
func (a *Text) Keep(b []byte) string {
	switch {
	case len(b) == 0:
		return ""
	case a == nil || !a.inBatch:
		return string(b)
	}
	at := len(a.buf)
	a.buf = append(a.buf, b...)
	return unsafe.String(&a.buf[at], len(b))
}
