package decode

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strconv"
	"time"
	"unsafe"

	"github.com/sluicedata/sluice/pipeline"
)

// The fast path: one scan over the record, no value tree. It decides only
// the records it can decide exactly as the general path (fastjson's parse
// followed by the checks of Decode) would, and only to accept them; for
// anything else — a rejection, an escape in a field sluice reads, a
// repeated known field, whitespace other than spaces, nesting deeper
// than maxFastDepth — it gives up and the general path decides (and words
// the reason). Properties and extra come out as the general path makes
// them: the input's JSON text without whitespace outside strings, strings
// as written (fastjson's MarshalTo of an unvisited value), every value
// validated as strictly as fastjson.Validate does. TestFastPathAgrees and
// FuzzFastPathAgrees hold the two paths equal.

// maxFastDepth bounds the nesting the fast path follows.
const maxFastDepth = 64

// fieldKind is what a known field held in the record.
type fieldKind uint8

const (
	kindAbsent fieldKind = iota
	kindNull
	kindString // raw text without escapes
	kindNumber // a valid JSON number
	kindObject // properties only: compacted into Stage.props
)

// decodeFast fills e from raw (valid UTF-8 without bytes below 0x20) and
// reports true, or leaves e untouched and reports false.
func (s *Stage) decodeFast(e *pipeline.Event, raw []byte) bool {
	var (
		kinds [numFields]fieldKind
		at    [numFields][2]int32 // [start, end) in raw of a string's text or a number
	)
	i := skipSpaces(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return false
	}
	s.extra, s.props = s.extra[:0], s.props[:0]
	i = skipSpaces(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return false // no event_id
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return false
		}
		ks := i + 1
		ke := quoteOrBackslash(raw, ks)
		if ke < 0 || raw[ke] != '"' {
			return false
		}
		key := raw[ks:ke]
		i = skipSpaces(raw, ke+1)
		if i >= len(raw) || raw[i] != ':' {
			return false
		}
		i = skipSpaces(raw, i+1)
		if i >= len(raw) {
			return false
		}
		f := lookupField(key)
		ok := true
		switch {
		case f < 0:
			if len(s.extra) == 0 {
				s.extra = append(s.extra, '{')
			} else {
				s.extra = append(s.extra, ',')
			}
			s.extra = append(s.extra, '"')
			s.extra = append(s.extra, key...)
			s.extra = append(s.extra, '"', ':')
			s.extra, i, ok = compactValue(s.extra, raw, i, 0)
		case kinds[f] != kindAbsent:
			return false // a repeated field: the general path's rules
		default:
			switch c := raw[i]; {
			case c == 'n':
				if !bytes.HasPrefix(raw[i:], []byte("null")) {
					return false
				}
				kinds[f], i = kindNull, i+4
			case c == '"':
				end := quoteOrBackslash(raw, i+1)
				if end < 0 || raw[end] != '"' {
					return false
				}
				kinds[f], at[f] = kindString, [2]int32{int32(i + 1), int32(end)}
				i = end + 1
			case c == '{' && f == fProperties:
				kinds[f] = kindObject
				s.props, i, ok = compactValue(s.props, raw, i, 0)
			case (c == '-' || c >= '0' && c <= '9') && (f == fTS || f == fUserID):
				var end int
				if end, ok = scanNumber(raw, i); ok {
					kinds[f], at[f] = kindNumber, [2]int32{int32(i), int32(end)}
					i = end
				}
			default:
				return false
			}
		}
		if !ok {
			return false
		}
		i = skipSpaces(raw, i)
		if i >= len(raw) {
			return false
		}
		if raw[i] == ',' {
			i = skipSpaces(raw, i+1)
			continue
		}
		if raw[i] != '}' {
			return false
		}
		if skipSpaces(raw, i+1) != len(raw) {
			return false
		}
		break
	}

	text := func(f int) []byte { return raw[at[f][0]:at[f][1]] }
	// The checks of the general path, in its order; any failure is its
	// to report.
	for _, f := range [...]int{fEventID, fEvent, fSessionID, fUserAgent, fAppID, fPlatform, fPageURL, fReferrer, fIP} {
		if kinds[f] != kindAbsent && kinds[f] != kindNull && kinds[f] != kindString {
			return false
		}
	}
	if kinds[fEventID] != kindString || at[fEventID][0] == at[fEventID][1] ||
		kinds[fEvent] != kindString || at[fEvent][0] == at[fEvent][1] {
		return false
	}
	var ts int64
	switch kinds[fTS] {
	case kindString:
		b := text(fTS)
		t, err := time.Parse(time.RFC3339Nano, unsafe.String(unsafe.SliceData(b), len(b)))
		if err != nil {
			return false
		}
		ts = t.UnixMilli()
	case kindNumber:
		b := text(fTS)
		if !isInteger(b) {
			return false
		}
		ms, err := strconv.ParseInt(unsafe.String(unsafe.SliceData(b), len(b)), 10, 64)
		if err != nil {
			return false
		}
		ts = ms
	default:
		return false
	}
	if kinds[fUserID] == kindNumber && !isInteger(text(fUserID)) {
		return false
	}
	if kinds[fProperties] != kindAbsent && kinds[fProperties] != kindNull && kinds[fProperties] != kindObject {
		return false
	}

	s.scratch = s.scratch[:0]
	var (
		spans   [numFields]span
		present [numFields]bool
	)
	for _, f := range [...]int{fEventID, fEvent, fSessionID, fUserAgent, fAppID, fPlatform, fPageURL, fReferrer, fUserID} {
		if kinds[f] == kindString || kinds[f] == kindNumber {
			spans[f] = s.add(text(f))
		}
	}
	for f, k := range kinds {
		present[f] = k != kindAbsent && k != kindNull
	}
	var ip []byte
	if kinds[fIP] == kindString {
		ip = text(fIP) // never nil, "" included: not an address
	}
	s.fill(e, &spans, &present, ts, ip)
	return true
}

// skipSpaces skips the only JSON whitespace the fast path sees: spaces
// (its records hold no byte below 0x20).
func skipSpaces(b []byte, i int) int {
	for i < len(b) && b[i] == ' ' {
		i++
	}
	return i
}

// compactValue validates the JSON value at b[i:] as fastjson.Validate
// does and appends it to dst without whitespace outside strings. It
// returns the index after the value; ok is false for anything invalid or
// deeper than maxFastDepth. The value is copied in runs between the
// whitespace it skips: one copy for a value written without any.
func compactValue(dst, b []byte, i, depth int) (_ []byte, _ int, ok bool) {
	c := compactor{dst: dst, b: b, run: i}
	if i, ok = c.value(i, depth); !ok {
		return c.dst, i, false
	}
	return append(c.dst, b[c.run:i]...), i, true
}

// compactor is compactValue's state: dst holds b[:run] compacted, and
// b[run:] is yet to be copied.
type compactor struct {
	dst []byte
	b   []byte
	run int
}

// skip skips the spaces at b[i:], copying the run before them.
func (c *compactor) skip(i int) int {
	j := skipSpaces(c.b, i)
	if j != i {
		c.dst = append(c.dst, c.b[c.run:i]...)
		c.run = j
	}
	return j
}

// value checks the value at b[i:] and returns the index after it.
func (c *compactor) value(i, depth int) (int, bool) {
	b := c.b
	if i >= len(b) {
		return i, false
	}
	switch ch := b[i]; {
	case ch == '{' || ch == '[':
		if depth >= maxFastDepth {
			return i, false
		}
		closer := byte('}')
		if ch == '[' {
			closer = ']'
		}
		i = c.skip(i + 1)
		if i < len(b) && b[i] == closer {
			return i + 1, true
		}
		for {
			if ch == '{' {
				if i >= len(b) || b[i] != '"' {
					return i, false
				}
				end, ok := scanString(b, i)
				if !ok {
					return i, false
				}
				i = c.skip(end)
				if i >= len(b) || b[i] != ':' {
					return i, false
				}
				i = c.skip(i + 1)
			}
			var ok bool
			if i, ok = c.value(i, depth+1); !ok {
				return i, false
			}
			i = c.skip(i)
			if i >= len(b) {
				return i, false
			}
			if b[i] == ',' {
				i = c.skip(i + 1)
				continue
			}
			if b[i] != closer {
				return i, false
			}
			return i + 1, true
		}
	case ch == '"':
		return scanString(b, i)
	case ch == 't', ch == 'f', ch == 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if lit[0] == ch {
				if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
					return i, false
				}
				return i + len(lit), true
			}
		}
	}
	return scanNumber(b, i)
}

// scanString checks the string whose opening quote is b[i] (escapes as
// fastjson.Validate allows them) and returns the index after its closing
// quote.
func scanString(b []byte, i int) (int, bool) {
	j := quoteOrBackslash(b, i+1)
	if j < 0 {
		return i, false
	}
	if b[j] == '"' {
		return j + 1, true
	}
	for j < len(b) {
		switch b[j] {
		case '"':
			return j + 1, true
		case '\\':
			if j+1 >= len(b) {
				return i, false
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if len(b)-j < 6 || !isHex4(b[j+2:j+6]) {
					return i, false
				}
				j += 6
			default:
				return i, false
			}
		default:
			j++
		}
	}
	return i, false
}

// quoteOrBackslash is the index of the first '"' or '\\' in b at or after
// j, or -1: eight bytes a step (a byte equal to c is the one where x^c
// has a zero byte; the lowest flagged byte is always a true one).
func quoteOrBackslash(b []byte, j int) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for ; j+8 <= len(b); j += 8 {
		x := binary.LittleEndian.Uint64(b[j:])
		q, bs := x^('"'*lo), x^('\\'*lo)
		if m := ((q-lo)&^q | (bs-lo)&^bs) & hi; m != 0 {
			return j + bits.TrailingZeros64(m)/8
		}
	}
	for ; j < len(b); j++ {
		if b[j] == '"' || b[j] == '\\' {
			return j
		}
	}
	return -1
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// scanNumber checks a JSON number at b[i:] (RFC 8259's grammar, as
// fastjson.Validate has it) and returns the index after it.
func scanNumber(b []byte, i int) (int, bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	digits := func() int {
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j - k
	}
	start := j
	n := digits()
	if n == 0 || (b[start] == '0' && n > 1) {
		return i, false
	}
	if j < len(b) && b[j] == '.' {
		j++
		if digits() == 0 {
			return i, false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if digits() == 0 {
			return i, false
		}
	}
	return j, true
}
