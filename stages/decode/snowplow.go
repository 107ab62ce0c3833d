package decode

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/sluicedata/sluice/internal/arena"
	"github.com/sluicedata/sluice/internal/snowplow"
	"github.com/sluicedata/sluice/pipeline"
)

// Schemas of the Snowplow tracker protocol's JSON, by prefix (any 1-x-y).
const (
	payloadDataSchema   = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-"
	unstructEventSchema = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-"
	contextsSchema      = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-"
)

// MaxPayloadEvents bounds the events of one Snowplow payload; a payload
// holding more is rejected whole.
const MaxPayloadEvents = 10_000

// Snowplow decodes the Snowplow raw stream: each record is a Thrift
// CollectorPayload (package snowplow) holding one event (a GET querystring)
// or many (a tp2 POST body), each becoming an Event with Index = its
// position. A record that is not a payload is one rejected event (Raw the
// record, Index 0); a bad event inside a good payload is its own rejected
// event (Raw that event's JSON). The mapping is the README's table
// (DESIGN.md, "Input events"). One Snowplow stage per partition worker.
type Snowplow struct {
	stats *Stats
	p, q  fastjson.Parser
	out   []pipeline.Event
	view  snowplow.View

	// Scratch of one event: its parameters (aliasing the parser's or the
	// querystring's memory), the text its Event keeps (collected in arena,
	// then kept in text), base64 output, sort order of extra.
	keys, vals [][]byte
	arena      []byte
	b64        []byte
	order      []int
	text       *arena.Text // the batch's arena while Process runs (nil: strings of their own)
}

// NewSnowplow returns a Snowplow decode stage counting into stats (nil:
// counts of its own).
func NewSnowplow(stats *Stats) *Snowplow {
	if stats == nil {
		stats = new(Stats)
	}
	return &Snowplow{stats: stats}
}

// Name implements pipeline.Stage.
func (s *Snowplow) Name() string { return StageName }

// Process implements pipeline.Stage: each kept event of b (one per record)
// is replaced by the events of its payload, in order. Their text shares
// one arena, valid while the batch is processed (as for Stage.Process).
func (s *Snowplow) Process(_ context.Context, b *pipeline.Batch) error {
	s.text = &b.Text
	defer func() { s.text = nil }()
	out := s.out[:0]
	for i := range b.Events {
		src := &b.Events[i]
		if src.State != pipeline.Keep {
			out = append(out, *src)
			continue
		}
		out = s.decodeRecord(out, src)
	}
	// The two arrays swap owners: the stage keeps the batch's old one
	// (each has one owner at a time, however batches are reused).
	clear(b.Events)
	b.Events, s.out = out, b.Events[:0]
	return nil
}

// record is what the events of one payload share.
type record struct {
	src       *pipeline.Event
	ts        int64 // collector timestamp
	ip        netip.Addr
	ipInvalid bool
	ua, nuid  string
}

func (s *Snowplow) get(k string) ([]byte, bool) {
	for i, key := range s.keys {
		if string(key) == k {
			return s.vals[i], true
		}
	}
	return nil, false
}

// eventJSON is the current event as a JSON object (a rejected event's
// raw): a POST element as sent, a GET's parameters sorted.
func (s *Snowplow) eventJSON(el *fastjson.Value) []byte {
	if el != nil {
		return el.MarshalTo(nil)
	}
	s.sortedParams(func([]byte) bool { return true })
	out := []byte{'{'}
	for n, i := range s.order {
		if n > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, s.keys[i])
		out = append(out, ':')
		out = appendJSONString(out, s.vals[i])
	}
	return append(out, '}')
}

// sortedParams sets s.order to the indexes of the parameters keep takes,
// sorted by name, each name once.
func (s *Snowplow) sortedParams(keep func(k []byte) bool) {
	s.order = s.order[:0]
	for i, k := range s.keys {
		if keep(k) {
			s.order = append(s.order, i)
		}
	}
	slices.SortStableFunc(s.order, func(a, b int) int { return bytes.Compare(s.keys[a], s.keys[b]) })
	s.order = slices.CompactFunc(s.order, func(a, b int) bool { return bytes.Equal(s.keys[a], s.keys[b]) })
}

func (s *Snowplow) decodeRecord(out []pipeline.Event, src *pipeline.Event) []pipeline.Event {
	reject := func(reason string) []pipeline.Event {
		e := *src
		e.Reject(StageName, reason)
		return append(out, e)
	}
	if src.Raw == nil {
		s.stats.Tombstones.Add(1)
		return reject(ReasonTombstone)
	}
	if len(src.Raw) == 0 {
		s.stats.EmptyValues.Add(1)
		return reject(ReasonEmpty)
	}
	v := &s.view
	if err := snowplow.UnmarshalView(src.Raw, v); err != nil {
		return reject(err.Error())
	}
	if !bytes.HasPrefix(v.Schema, []byte(snowplow.SchemaPrefix)) {
		return reject(fmt.Sprintf("not a Snowplow CollectorPayload: schema %q", truncate(v.Schema, 100)))
	}
	rec := record{src: src, ts: v.Timestamp}
	if len(v.IPAddress) > 0 {
		if a, err := netip.ParseAddr(string(v.IPAddress)); err == nil {
			rec.ip = a.Unmap()
		} else {
			rec.ipInvalid = true
		}
	}
	if len(v.UserAgent) > 0 {
		rec.ua = string(v.UserAgent)
	}
	if len(v.NetworkUserID) > 0 {
		rec.nuid = string(v.NetworkUserID)
	}
	switch {
	case len(v.Body) > 0:
		return s.post(out, &rec, v.Body, reject)
	case len(v.Querystring) > 0:
		q, err := url.ParseQuery(string(v.Querystring))
		if err != nil {
			return reject("querystring: " + pipeline.ShortReason(err.Error()))
		}
		s.keys, s.vals = s.keys[:0], s.vals[:0]
		for k, vs := range q {
			s.keys = append(s.keys, []byte(k))
			s.vals = append(s.vals, []byte(vs[0]))
		}
		return s.emit(out, &rec, 0, nil)
	}
	return reject("no events: neither a querystring nor a body")
}

// post emits the events of a tp2 body.
func (s *Snowplow) post(out []pipeline.Event, rec *record, body []byte, reject func(string) []pipeline.Event) []pipeline.Event {
	v, err := s.p.ParseBytes(body)
	if err != nil {
		return reject(jsonReason("body: invalid JSON: ", err))
	}
	if schema := v.GetStringBytes("schema"); !bytes.HasPrefix(schema, []byte(payloadDataSchema)) {
		return reject(fmt.Sprintf("body: schema %q is not payload_data", truncate(schema, 100)))
	}
	data := v.Get("data")
	if data == nil || data.Type() != fastjson.TypeArray {
		return reject("body: data is not an array of events")
	}
	arr, _ := data.Array()
	if len(arr) > MaxPayloadEvents {
		return reject(fmt.Sprintf("body: %d events, more than %d", len(arr), MaxPayloadEvents))
	}
	if len(arr) == 0 {
		return reject("body: no events")
	}
	for i, el := range arr {
		s.keys, s.vals = s.keys[:0], s.vals[:0]
		if o, err := el.Object(); err == nil {
			o.Visit(func(k []byte, fv *fastjson.Value) {
				switch fv.Type() {
				case fastjson.TypeString:
					s.keys = append(s.keys, k)
					s.vals = append(s.vals, fv.GetStringBytes())
				case fastjson.TypeNumber, fastjson.TypeTrue, fastjson.TypeFalse:
					s.keys = append(s.keys, k)
					s.vals = append(s.vals, fv.MarshalTo(nil))
				}
				// null, objects, arrays: not tracker parameters
			})
		}
		out = s.emit(out, rec, i, el)
	}
	return out
}

// emit appends the event of the current parameters (s.keys, s.vals), at
// index i of its record; el is its POST element (nil for a GET).
func (s *Snowplow) emit(out []pipeline.Event, rec *record, i int, el *fastjson.Value) []pipeline.Event {
	src := rec.src
	out = append(out, pipeline.Event{Topic: src.Topic, Partition: src.Partition, Offset: src.Offset,
		KafkaTime: src.KafkaTime, Raw: src.Raw, Index: int32(i)})
	e := &out[len(out)-1]
	if reason := s.event(e, rec); reason != "" {
		*e = pipeline.Event{Topic: src.Topic, Partition: src.Partition, Offset: src.Offset,
			KafkaTime: src.KafkaTime, Raw: s.eventJSON(el), Index: int32(i)}
		e.Reject(StageName, reason)
	}
	return out
}

// The parameters the mapping consumes; every other one goes to extra.
var mapped = map[string]bool{
	"e": true, "eid": true, "uid": true, "sid": true, "aid": true, "p": true,
	"url": true, "refr": true, "ip": true, "ua": true, "duid": true, "tnuid": true,
	"ue_pr": true, "ue_px": true, "cx": true, "co": true,
	"se_ca": true, "se_ac": true, "se_la": true, "se_pr": true, "se_va": true,
}

// eventNames maps the tracker protocol's event types to event_name.
var eventNames = map[string]string{
	"pv": "page_view", "pp": "page_ping", "se": "struct", "tr": "transaction", "ti": "transaction_item",
}

// event fills e from the current parameters and its record; it returns
// the reason to reject the event, or "". The text e keeps is collected in
// s.arena, kept as one string (in the batch's arena), sliced.
func (s *Snowplow) event(e *pipeline.Event, rec *record) string {
	for i, v := range s.vals {
		if !utf8.Valid(v) || !utf8.Valid(s.keys[i]) {
			return fmt.Sprintf("%s: not valid UTF-8", truncate(s.keys[i], 40))
		}
	}
	typ, _ := s.get("e")
	if len(typ) == 0 {
		return "e: missing event type"
	}
	eid, _ := s.get("eid")
	if len(eid) == 0 {
		return "eid: missing event id"
	}
	s.arena = s.arena[:0]
	add := func(b []byte) span {
		n := len(s.arena)
		s.arena = append(s.arena, b...)
		return span{int32(n), int32(len(b))}
	}
	var sp [numSnowplowSpans]span
	var has [numSnowplowSpans]bool
	sp[sEventID], has[sEventID] = add(eid), true

	// event_time: Snowplow's derived timestamp.
	var ts [3]int64
	var tsHas [3]bool
	for i, k := range [...]string{"ttm", "dtm", "stm"} {
		v, ok := s.get(k)
		if !ok {
			continue
		}
		n, ok := epochMillis(v)
		if !ok {
			return fmt.Sprintf("%s: %q is not epoch milliseconds", k, truncate(v, 40))
		}
		ts[i], tsHas[i] = n, true
	}
	switch {
	case tsHas[0]:
		e.EventTime = ts[0]
	case tsHas[1] && tsHas[2] && rec.ts > 0:
		e.EventTime = rec.ts - (ts[2] - ts[1])
	case tsHas[1]:
		e.EventTime = ts[1]
	default:
		e.EventTime = rec.ts
	}
	for _, f := range snowplowFields {
		if v, ok := s.get(f.param); ok {
			sp[f.span], has[f.span] = add(v), true
			e.Present |= f.present
		}
	}
	if rec.nuid != "" && !has[sNetworkUserID] {
		e.NetworkUserID = rec.nuid
		e.Present |= pipeline.HasNetworkUserID
	}
	e.UserAgent = rec.ua
	if v, ok := s.get("ua"); ok {
		e.UserAgent = string(v)
	}
	if e.UserAgent != "" {
		e.Present |= pipeline.HasUserAgent
	}
	e.IP, e.IPInvalid = rec.ip, rec.ipInvalid
	if v, ok := s.get("ip"); ok {
		if a, err := netip.ParseAddr(string(v)); err == nil {
			e.IP, e.IPInvalid = a.Unmap(), false
		} else {
			e.IP, e.IPInvalid = netip.Addr{}, true
		}
	}

	// Contexts: cx (base64url) or co (JSON).
	if js, k, reason := s.selfDescribing("co", "cx"); reason != "" {
		return reason
	} else if js != nil {
		if !bytes.HasPrefix(js.GetStringBytes("schema"), []byte(contextsSchema)) {
			return k + ": schema is not contexts"
		}
		data := js.Get("data")
		if data == nil || data.Type() != fastjson.TypeArray {
			return k + ": data is not an array"
		}
		arr, _ := data.Array()
		for _, c := range arr {
			if c.Type() != fastjson.TypeObject || len(c.GetStringBytes("schema")) == 0 {
				return k + ": a context without a schema"
			}
		}
		n := len(s.arena)
		s.arena = data.MarshalTo(s.arena)
		sp[sContexts], has[sContexts] = span{int32(n), int32(len(s.arena) - n)}, true
		e.Present |= pipeline.HasContexts
	}

	name, known := eventNames[string(typ)]
	if !known {
		name = ""
		sp[sName], has[sName] = add(typ), true
	}
	switch string(typ) {
	case "ue":
		js, k, reason := s.selfDescribing("ue_pr", "ue_px")
		if reason != "" {
			return reason
		}
		if js == nil {
			return "ue: no ue_pr or ue_px"
		}
		if !bytes.HasPrefix(js.GetStringBytes("schema"), []byte(unstructEventSchema)) {
			return k + ": schema is not unstruct_event"
		}
		inner := js.Get("data")
		schema := inner.GetStringBytes("schema")
		if len(schema) == 0 {
			return k + ": the event has no schema"
		}
		nm := schemaName(schema)
		if nm == nil {
			return fmt.Sprintf("%s: schema %q is not iglu:vendor/name/format/version", k, truncate(schema, 100))
		}
		sp[sSchema], has[sSchema] = add(schema), true
		sp[sName], has[sName] = add(nm), true
		e.Present |= pipeline.HasEventSchema
		if d := inner.Get("data"); d != nil {
			n := len(s.arena)
			s.arena = d.MarshalTo(s.arena)
			sp[sProperties], has[sProperties] = span{int32(n), int32(len(s.arena) - n)}, true
			e.Present |= pipeline.HasProperties
		}
	case "se":
		n := len(s.arena)
		for _, f := range [...]struct{ k, name string }{{"se_ca", "category"}, {"se_ac", "action"}, {"se_la", "label"}, {"se_pr", "property"}, {"se_va", "value"}} {
			v, ok := s.get(f.k)
			if !ok {
				continue
			}
			if len(s.arena) == n {
				s.arena = append(s.arena, '{')
			} else {
				s.arena = append(s.arena, ',')
			}
			s.arena = append(s.arena, '"')
			s.arena = append(s.arena, f.name...)
			s.arena = append(s.arena, '"', ':')
			if f.k == "se_va" && isJSONNumber(v) {
				s.arena = append(s.arena, v...)
				continue
			}
			s.arena = appendJSONString(s.arena, v)
		}
		if len(s.arena) > n {
			s.arena = append(s.arena, '}')
			sp[sProperties], has[sProperties] = span{int32(n), int32(len(s.arena) - n)}, true
			e.Present |= pipeline.HasProperties
		}
	case "pv":
		if v, ok := s.get("page"); ok {
			n := len(s.arena)
			s.arena = append(s.arena, `{"title":`...)
			s.arena = appendJSONString(s.arena, v)
			s.arena = append(s.arena, '}')
			sp[sProperties], has[sProperties] = span{int32(n), int32(len(s.arena) - n)}, true
			e.Present |= pipeline.HasProperties
		}
	}

	// Every other parameter, as strings, in extra (sorted: deterministic).
	pv := string(typ) == "pv"
	s.sortedParams(func(k []byte) bool { return !mapped[string(k)] && !(pv && string(k) == "page") })
	if len(s.order) > 0 {
		n := len(s.arena)
		s.arena = append(s.arena, '{')
		for j, i := range s.order {
			if j > 0 {
				s.arena = append(s.arena, ',')
			}
			s.arena = appendJSONString(s.arena, s.keys[i])
			s.arena = append(s.arena, ':')
			s.arena = appendJSONString(s.arena, s.vals[i])
		}
		s.arena = append(s.arena, '}')
		sp[sExtra], has[sExtra] = span{int32(n), int32(len(s.arena) - n)}, true
		e.Present |= pipeline.HasExtra
	}

	str := s.text.Keep(s.arena)
	at := func(i int) string { return str[sp[i].off : sp[i].off+sp[i].n] }
	e.EventID = at(sEventID)
	e.EventName = name
	if has[sName] {
		e.EventName = at(sName)
	}
	for _, f := range snowplowFields {
		if has[f.span] {
			*f.field(e) = at(f.span)
		}
	}
	if has[sSchema] {
		e.EventSchema = at(sSchema)
	}
	if has[sContexts] {
		e.Contexts = at(sContexts)
	}
	if has[sProperties] {
		e.Properties = at(sProperties)
	}
	if has[sExtra] {
		e.Extra = at(sExtra)
	}
	return ""
}

// Spans of the text an event keeps.
const (
	sEventID = iota
	sName
	sUserID
	sSessionID
	sAppID
	sPlatform
	sPageURL
	sReferrer
	sDomainUserID
	sNetworkUserID
	sSchema
	sContexts
	sProperties
	sExtra
	numSnowplowSpans
)

// snowplowFields are the parameters copied to an event field as given.
var snowplowFields = [...]struct {
	param   string
	span    int
	present pipeline.Fields
	field   func(*pipeline.Event) *string
}{
	{"uid", sUserID, pipeline.HasUserID, func(e *pipeline.Event) *string { return &e.UserID }},
	{"sid", sSessionID, pipeline.HasSessionID, func(e *pipeline.Event) *string { return &e.SessionID }},
	{"aid", sAppID, pipeline.HasAppID, func(e *pipeline.Event) *string { return &e.AppID }},
	{"p", sPlatform, pipeline.HasPlatform, func(e *pipeline.Event) *string { return &e.Platform }},
	{"url", sPageURL, pipeline.HasPageURL, func(e *pipeline.Event) *string { return &e.PageURL }},
	{"refr", sReferrer, pipeline.HasReferrer, func(e *pipeline.Event) *string { return &e.Referrer }},
	{"duid", sDomainUserID, pipeline.HasDomainUserID, func(e *pipeline.Event) *string { return &e.DomainUserID }},
	// The tracker's network user id overrides the collector's cookie.
	{"tnuid", sNetworkUserID, pipeline.HasNetworkUserID, func(e *pipeline.Event) *string { return &e.NetworkUserID }},
}

// epochMillis reads a non-negative decimal integer of at most 18 digits.
func epochMillis(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// isJSONNumber tells whether b is a JSON number.
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	n := digits(b[i:])
	if n == 0 || (b[i] == '0' && n > 1) {
		return false
	}
	i += n
	if i < len(b) && b[i] == '.' {
		if n = digits(b[i+1:]); n == 0 {
			return false
		}
		i += 1 + n
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if n = digits(b[i:]); n == 0 {
			return false
		}
		i += n
	}
	return i == len(b)
}

// digits is the length of b's leading run of decimal digits.
func digits(b []byte) int {
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	return n
}

// selfDescribing parses the JSON parameter plain, or else the base64
// parameter encoded; nil when the event has neither. k is the parameter
// read.
func (s *Snowplow) selfDescribing(plain, encoded string) (*fastjson.Value, string, string) {
	text, ok := s.get(plain)
	k := plain
	if !ok {
		b64, ok := s.get(encoded)
		if !ok {
			return nil, "", ""
		}
		k = encoded
		var err error
		if s.b64, err = decodeBase64(s.b64[:0], b64); err != nil {
			return nil, k, k + ": invalid base64"
		}
		text = s.b64
	}
	if !utf8.Valid(text) {
		return nil, k, k + ": not valid UTF-8"
	}
	v, err := s.q.ParseBytes(text)
	if err != nil {
		return nil, k, jsonReason(k+": invalid JSON: ", err)
	}
	if v.Type() != fastjson.TypeObject {
		return nil, k, k + ": not a JSON object"
	}
	return v, k, ""
}

// decodeBase64 appends to dst the tracker's base64 b: URL-safe or
// standard, padded or not.
func decodeBase64(dst, b []byte) ([]byte, error) {
	b = bytes.TrimRight(b, "=")
	enc := base64.RawURLEncoding
	if bytes.ContainsAny(b, "+/") {
		enc = base64.RawStdEncoding
	}
	n := enc.DecodedLen(len(b))
	dst = slices.Grow(dst[:0], n)[:n]
	m, err := enc.Decode(dst, b)
	return dst[:m], err
}

// schemaName is the name of an Iglu schema URI
// (iglu:vendor/name/format/version), nil if it is not one.
func schemaName(uri []byte) []byte {
	rest, ok := bytes.CutPrefix(uri, []byte("iglu:"))
	if !ok || bytes.Count(rest, []byte("/")) != 3 {
		return nil
	}
	vendor := bytes.IndexByte(rest, '/')
	name := bytes.IndexByte(rest[vendor+1:], '/')
	format := bytes.IndexByte(rest[vendor+1+name+1:], '/')
	if vendor == 0 || name == 0 || format == 0 || rest[len(rest)-1] == '/' {
		return nil
	}
	return rest[vendor+1 : vendor+1+name]
}
