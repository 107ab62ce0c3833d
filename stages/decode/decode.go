// Package decode turns the JSON value of each Kafka record into a typed
// pipeline.Event, following the input contract of DESIGN.md. A record that
// is not a JSON object, lacks a required field or has a field of the wrong
// type is rejected with a precise reason; it is never dropped.
package decode

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/sluicedata/sluice/internal/arena"
	"github.com/sluicedata/sluice/pipeline"
	"github.com/valyala/fastjson"
)

// StageName is the name rejections of this stage carry.
const StageName = "decode"

// Reasons of records rejected before they are parsed.
const (
	// ReasonTombstone: the record value is null (a Kafka tombstone).
	ReasonTombstone = "tombstone: record value is null"
	// ReasonEmpty: the record value is empty (zero bytes).
	ReasonEmpty = "empty record value"
)

// Stats count what the decode stages of every partition saw, for metrics;
// safe for concurrent use.
type Stats struct {
	Tombstones  atomic.Int64 // records with a null value
	EmptyValues atomic.Int64 // records with an empty value
}

// Stage decodes records. It keeps one parser and scratch buffers, so one
// Stage must not be shared between partition workers.
type Stage struct {
	stats   *Stats
	p       fastjson.Parser
	scratch []byte // string arena of the current event
	extra   []byte
	props   []byte
	text    *arena.Text // the batch's arena while Process runs (nil: strings of their own)
}

// New returns a decode stage counting into stats (shared by the stages of
// every partition; nil: counts of its own).
func New(stats *Stats) *Stage {
	if stats == nil {
		stats = new(Stats)
	}
	return &Stage{stats: stats}
}

// Name implements pipeline.Stage.
func (s *Stage) Name() string { return StageName }

// Process implements pipeline.Stage: it decodes every kept event of b from
// its Raw value. The events' text fields share one buffer, the batch's
// arena (pipeline.Batch.Text), reused by the batch's next use: like Raw,
// they are valid only while the batch is processed (pipeline.Event), and
// whatever keeps one longer copies it. No allocation per event once the
// batch was reset.
func (s *Stage) Process(_ context.Context, b *pipeline.Batch) error {
	s.text = &b.Text
	defer func() { s.text = nil }()
	for i := range b.Events {
		e := &b.Events[i]
		if e.State != pipeline.Keep {
			continue
		}
		if reason := s.Decode(e); reason != "" {
			e.Reject(StageName, reason)
		}
	}
	return nil
}

// field indexes of the known top-level fields.
const (
	fEventID = iota
	fEvent
	fTS
	fUserID
	fSessionID
	fIP
	fUserAgent
	fAppID
	fPlatform
	fPageURL
	fReferrer
	fProperties
	numFields
)

var fieldNames = [numFields]string{
	fEventID: "event_id", fEvent: "event", fTS: "ts", fUserID: "user_id",
	fSessionID: "session_id", fIP: "ip", fUserAgent: "user_agent",
	fAppID: "app_id", fPlatform: "platform", fPageURL: "page_url",
	fReferrer: "referrer", fProperties: "properties",
}

func lookupField(key []byte) int {
	// A switch on string(key) does not allocate.
	switch string(key) {
	case "event_id":
		return fEventID
	case "event":
		return fEvent
	case "ts":
		return fTS
	case "user_id":
		return fUserID
	case "session_id":
		return fSessionID
	case "ip":
		return fIP
	case "user_agent":
		return fUserAgent
	case "app_id":
		return fAppID
	case "platform":
		return fPlatform
	case "page_url":
		return fPageURL
	case "referrer":
		return fReferrer
	case "properties":
		return fProperties
	}
	return -1
}

// presence maps the optional fields to their bit in Event.Present.
var presence = [numFields]pipeline.Fields{
	fUserID: pipeline.HasUserID, fSessionID: pipeline.HasSessionID, fUserAgent: pipeline.HasUserAgent,
	fAppID: pipeline.HasAppID, fPlatform: pipeline.HasPlatform, fPageURL: pipeline.HasPageURL,
	fReferrer: pipeline.HasReferrer, fProperties: pipeline.HasProperties,
}

// span is a string's place in the scratch arena.
type span struct{ off, n int32 }

// Decode fills e from e.Raw. It returns "" on success and the reason for
// rejecting the record otherwise; e is left partly filled on rejection.
// Called alone (not from Process), the event's text is its own.
func (s *Stage) Decode(e *pipeline.Event) string {
	raw := e.Raw
	if raw == nil {
		s.stats.Tombstones.Add(1)
		return ReasonTombstone
	}
	if len(raw) == 0 {
		s.stats.EmptyValues.Add(1)
		return ReasonEmpty
	}
	valid, control := scanText(raw)
	if !valid {
		return "record value is not valid UTF-8"
	}
	if !control && s.decodeFast(e, raw) {
		return ""
	}
	return s.decodeGeneral(e, raw, control)
}

// decodeGeneral is Decode for every record: fastjson's parse, then the
// checks. control says raw holds a byte below 0x20.
func (s *Stage) decodeGeneral(e *pipeline.Event, raw []byte, control bool) string {
	if control {
		// RFC 8259: control characters in strings must be escaped;
		// fastjson lets them through.
		if at, c := controlInString(raw); at >= 0 {
			return fmt.Sprintf("invalid JSON: unescaped control character U+%04X in a string at offset %d", c, at)
		}
	}
	// The parser is lenient about numbers (007, NaN): integers are checked
	// where they are read, and the JSON text we pass on (properties,
	// extra) is validated below, which is cheaper than validating every
	// record in a second pass.
	v, err := s.p.ParseBytes(raw)
	if err != nil {
		return jsonReason("invalid JSON: ", err)
	}
	obj, err := v.Object()
	if err != nil {
		return "not a JSON object (got " + v.Type().String() + ")"
	}

	var (
		vals   [numFields]*fastjson.Value
		reason string
	)
	s.extra = s.extra[:0]
	obj.Visit(func(key []byte, fv *fastjson.Value) {
		if reason != "" {
			return
		}
		f := lookupField(key)
		if f < 0 {
			if len(s.extra) == 0 {
				s.extra = append(s.extra, '{')
			} else {
				s.extra = append(s.extra, ',')
			}
			s.extra = appendJSONString(s.extra, key)
			s.extra = append(s.extra, ':')
			s.extra = fv.MarshalTo(s.extra)
			return
		}
		if vals[f] != nil {
			reason = "duplicate field " + fieldNames[f]
			return
		}
		if fv.Type() != fastjson.TypeNull { // explicit null counts as absent
			vals[f] = fv
		}
	})
	if reason != "" {
		return reason
	}

	// Strings of the event share one allocation: collect them in the
	// arena, then cut the final string into pieces.
	s.scratch = s.scratch[:0]
	var spans [numFields]span
	for _, f := range [...]int{fEventID, fEvent, fSessionID, fUserAgent, fAppID, fPlatform, fPageURL, fReferrer} {
		fv := vals[f]
		if fv == nil {
			continue
		}
		b, err := fv.StringBytes()
		if err != nil {
			return wrongType(fieldNames[f], "string", fv)
		}
		spans[f] = s.add(b)
	}
	if vals[fEventID] == nil {
		return "missing required field event_id"
	}
	if spans[fEventID].n == 0 {
		return "event_id is empty"
	}
	if vals[fEvent] == nil {
		return "missing required field event"
	}
	if spans[fEvent].n == 0 {
		return "event is empty"
	}

	if vals[fTS] == nil {
		return "missing required field ts"
	}
	ts, reason := parseTS(vals[fTS])
	if reason != "" {
		return reason
	}

	var ipBytes []byte
	if fv := vals[fIP]; fv != nil {
		b, err := fv.StringBytes()
		if err != nil {
			return wrongType("ip", "string", fv)
		}
		ipBytes = b
	}

	if fv := vals[fUserID]; fv != nil {
		switch fv.Type() {
		case fastjson.TypeString:
			b, _ := fv.StringBytes()
			spans[fUserID] = s.add(b)
		case fastjson.TypeNumber:
			// Integers as their exact decimal digits, never via float64.
			n := len(s.scratch)
			s.scratch = fv.MarshalTo(s.scratch)
			if !isInteger(s.scratch[n:]) {
				s.scratch = s.scratch[:n]
				return "user_id: want string or integer, got non-integer number"
			}
			spans[fUserID] = span{int32(n), int32(len(s.scratch) - n)}
		default:
			return wrongType("user_id", "string or integer", fv)
		}
	}

	s.props = s.props[:0]
	if fv := vals[fProperties]; fv != nil {
		if fv.Type() != fastjson.TypeObject {
			return wrongType("properties", "object", fv)
		}
		s.props = fv.MarshalTo(s.props)
	}

	if len(s.props) > 0 {
		if err := fastjson.ValidateBytes(s.props); err != nil {
			return jsonReason("invalid JSON in properties: ", err)
		}
	}
	if len(s.extra) > 0 {
		s.extra = append(s.extra, '}')
		err := fastjson.ValidateBytes(s.extra)
		s.extra = s.extra[:len(s.extra)-1]
		if err != nil {
			return jsonReason("invalid JSON: ", err)
		}
	}

	var present [numFields]bool
	for f, v := range vals {
		present[f] = v != nil
	}
	s.fill(e, &spans, &present, ts, ipBytes)
	return ""
}

// fill sets e from what a path of Decode found: the spans in the arena
// s.scratch of its text fields, present (a field with a value, JSON null
// being none), ts, s.props and s.extra (without its closing brace), and
// the ip's text (nil: no ip). One string holds every text field.
func (s *Stage) fill(e *pipeline.Event, spans *[numFields]span, present *[numFields]bool, ts int64, ip []byte) {
	propsAt := len(s.scratch)
	s.scratch = append(s.scratch, s.props...)
	extraAt := len(s.scratch)
	if len(s.extra) > 0 {
		s.scratch = append(s.scratch, s.extra...)
		s.scratch = append(s.scratch, '}')
	}
	all := s.text.Keep(s.scratch)
	cut := func(sp span) string { return all[sp.off : sp.off+sp.n] }

	e.EventID = cut(spans[fEventID])
	e.EventName = cut(spans[fEvent])
	e.EventTime = ts
	e.Present = 0
	for f, has := range presence {
		if has != 0 && present[f] {
			e.Present |= has
		}
	}
	if len(s.extra) > 0 {
		e.Present |= pipeline.HasExtra
	}
	e.UserID = cut(spans[fUserID])
	e.SessionID = cut(spans[fSessionID])
	e.UserAgent = cut(spans[fUserAgent])
	e.AppID = cut(spans[fAppID])
	e.Platform = cut(spans[fPlatform])
	e.PageURL = cut(spans[fPageURL])
	e.Referrer = cut(spans[fReferrer])
	e.Properties = all[propsAt:extraAt]
	e.Extra = all[extraAt:]
	if ip != nil {
		// Not kept: an Addr holds no text (a zone is copied).
		if a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(ip), len(ip))); err == nil {
			e.IP = a.Unmap()
		} else {
			e.IPInvalid = true
		}
	}
}

// scanText reports whether b is valid UTF-8 and whether it holds a byte
// below 0x20 (a control character; JSON whitespace \t \n \r included).
// The second looks at 32 bytes per step: a byte x < 0x20 is the one whose
// x - 0x20 borrows into its high bit while x's own high bit is clear, and
// bytes of multi-byte runes (0x80 and up) never are.
func scanText(b []byte) (valid, control bool) {
	if !utf8.Valid(b) {
		return false, false
	}
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	var ctl uint64
	for len(b) >= 32 {
		w := b[:32:32]
		w0 := binary.LittleEndian.Uint64(w[0:8])
		w1 := binary.LittleEndian.Uint64(w[8:16])
		w2 := binary.LittleEndian.Uint64(w[16:24])
		w3 := binary.LittleEndian.Uint64(w[24:32])
		ctl |= (w0-0x20*lo)&^w0 | (w1-0x20*lo)&^w1 | (w2-0x20*lo)&^w2 | (w3-0x20*lo)&^w3
		b = b[32:]
	}
	if ctl&hi != 0 {
		return true, true
	}
	for _, c := range b {
		if c < 0x20 {
			return true, true
		}
	}
	return true, false
}

// controlInString returns the offset and value of the first control
// character (below 0x20) inside a JSON string of b, or -1. Control
// characters outside strings are whitespace or a syntax error the parser
// reports.
func controlInString(b []byte) (int, byte) {
	in, esc := false, false
	for i, c := range b {
		switch {
		case !in:
			in = c == '"'
		case esc:
			esc = false
			if c < 0x20 {
				return i, c
			}
		case c == '\\':
			esc = true
		case c == '"':
			in = false
		case c < 0x20:
			return i, c
		}
	}
	return -1, 0
}

func (s *Stage) add(b []byte) span {
	n := len(s.scratch)
	s.scratch = append(s.scratch, b...)
	return span{int32(n), int32(len(b))}
}

// parseTS reads ts: an RFC 3339 string (any fraction, truncated to ms) or
// an integer of epoch milliseconds.
func parseTS(v *fastjson.Value) (int64, string) {
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		// The text is not kept (only in time.Parse's error, dropped
		// here): no copy of it.
		t, err := time.Parse(time.RFC3339Nano, unsafe.String(unsafe.SliceData(b), len(b)))
		if err != nil {
			return 0, fmt.Sprintf("ts: %q is not an RFC 3339 timestamp", truncate(b, 64))
		}
		return t.UnixMilli(), ""
	case fastjson.TypeNumber:
		var buf [32]byte
		digits := v.MarshalTo(buf[:0])
		if !isInteger(digits) {
			return 0, "ts: want RFC 3339 string or integer epoch milliseconds, got non-integer number"
		}
		ms, err := strconv.ParseInt(string(digits), 10, 64)
		if err != nil {
			return 0, "ts: epoch milliseconds out of range"
		}
		return ms, ""
	default:
		return 0, wrongType("ts", "RFC 3339 string or integer epoch milliseconds", v)
	}
}

// isInteger reports whether b is a JSON integer: digits, an optional
// minus, no leading zero.
func isInteger(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 || (b[0] == '0' && len(b) > 1) {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// jsonReason is a parser error as a short reason: the parser nests one
// "cannot parse …" per level (thousands for deeply nested input) and quotes
// the unparsed input, so the start and the cause are kept and the rest cut.
func jsonReason(prefix string, err error) string {
	msg, tail := err.Error(), ""
	if i := strings.LastIndex(msg, "; unparsed tail: "); i >= 0 {
		msg, tail = msg[:i], msg[i:]
		if len(tail) > 60 {
			n := 60 // not inside a rune (FuzzDecode found one)
			for n > 0 && !utf8.RuneStart(tail[n]) {
				n--
			}
			tail = tail[:n] + "…"
		}
	}
	if parts := strings.Split(msg, ": "); len(parts) > 5 {
		msg = strings.Join(parts[:3], ": ") + ": …: " + parts[len(parts)-1]
	}
	return pipeline.ShortReason(prefix + msg + tail)
}

func wrongType(field, want string, v *fastjson.Value) string {
	return field + ": want " + want + ", got " + v.Type().String()
}

func truncate(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return b[:n]
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
