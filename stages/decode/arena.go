package decode

import "unsafe"

// textArena holds the text of a batch's events, for both decode stages:
// begin at the start of Process, keep for each event's text. Text kept
// this way aliases the arena, which the next begin reuses: like Raw, it is
// valid only while its batch is processed (pipeline.Event), and whatever
// keeps it longer copies it. Outside a batch (Stage.Decode called alone)
// keep returns a string of its own.
type textArena struct {
	buf     []byte
	inBatch bool
}

// maxBatchArena: an arena that grew past it (a batch of very large events)
// is not kept for the next batch.
const maxBatchArena = 1 << 20

// poisonReuse: under the race detector (make test) begin overwrites the
// previous batch's arena and starts a new one, so a stage, sink or test
// that keeps an event's text past its batch sees it broken at once
// (poison_race.go); benchmarks and releases do not pay for it.
var poisonReuse = false

// begin starts a batch; end must follow.
func (a *textArena) begin() {
	if cap(a.buf) > maxBatchArena {
		a.buf = nil
	}
	if poisonReuse && cap(a.buf) > 0 {
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

func (a *textArena) end() { a.inBatch = false }

// keep returns b as a string: in the arena during a batch, else a copy of
// its own. Growth leaves the batch's earlier text in the old array, which
// nothing writes again.
func (a *textArena) keep(b []byte) string {
	switch {
	case len(b) == 0:
		return ""
	case !a.inBatch:
		return string(b)
	}
	at := len(a.buf)
	a.buf = append(a.buf, b...)
	return unsafe.String(&a.buf[at], len(b))
}
