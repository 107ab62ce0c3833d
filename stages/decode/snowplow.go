package decode

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fastjson"

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
	names []string // scratch: parameter names
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
// is replaced by the events of its payload, in order.
func (s *Snowplow) Process(_ context.Context, b *pipeline.Batch) error {
	out := s.out[:0]
	for i := range b.Events {
		src := &b.Events[i]
		if src.State != pipeline.Keep {
			out = append(out, *src)
			continue
		}
		out = s.decodeRecord(out, src)
	}
	// The two arrays swap: both belong to this partition's worker.
	clear(b.Events)
	b.Events, s.out = out, b.Events[:0]
	return nil
}

// params is one event's parameters: names and values in input order.
type params struct {
	keys, vals []string
	raw        []byte // the event's JSON (a POST element), nil for a GET
}

func (p *params) get(k string) (string, bool) {
	for i, key := range p.keys {
		if key == k {
			return p.vals[i], true
		}
	}
	return "", false
}

// eventJSON is the event as a JSON object (rejected events' raw).
func (p *params) eventJSON() []byte {
	if p.raw != nil {
		return p.raw
	}
	idx := make([]int, len(p.keys))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return strings.Compare(p.keys[a], p.keys[b]) })
	out := []byte{'{'}
	for n, i := range idx {
		if n > 0 {
			out = append(out, ',')
		}
		out = strconv.AppendQuote(out, p.keys[i])
		out = append(out, ':')
		out = appendJSONString(out, []byte(p.vals[i]))
	}
	return append(out, '}')
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
	var pl snowplow.CollectorPayload
	if err := snowplow.Unmarshal(src.Raw, &pl); err != nil {
		return reject(err.Error())
	}
	if !strings.HasPrefix(pl.Schema, snowplow.SchemaPrefix) {
		return reject(fmt.Sprintf("not a Snowplow CollectorPayload: schema %q", truncateString(pl.Schema, 100)))
	}
	events, reason := s.payloadEvents(&pl)
	if reason != "" {
		return reject(reason)
	}
	for i := range events {
		e := pipeline.Event{Topic: src.Topic, Partition: src.Partition, Offset: src.Offset,
			KafkaTime: src.KafkaTime, Raw: src.Raw, Index: int32(i)}
		if reason := s.event(&e, &events[i], &pl); reason != "" {
			e = pipeline.Event{Topic: src.Topic, Partition: src.Partition, Offset: src.Offset,
				KafkaTime: src.KafkaTime, Raw: events[i].eventJSON(), Index: int32(i)}
			e.Reject(StageName, reason)
		}
		out = append(out, e)
	}
	return out
}

// payloadEvents are the parameter sets of the payload's events: the tp2
// POST body's data array, or the querystring of a GET.
func (s *Snowplow) payloadEvents(pl *snowplow.CollectorPayload) ([]params, string) {
	if pl.Body != "" {
		v, err := s.p.Parse(pl.Body)
		if err != nil {
			return nil, jsonReason("body: invalid JSON: ", err)
		}
		schema := string(v.GetStringBytes("schema"))
		if !strings.HasPrefix(schema, payloadDataSchema) {
			return nil, fmt.Sprintf("body: schema %q is not payload_data", truncateString(schema, 100))
		}
		data := v.Get("data")
		if data == nil || data.Type() != fastjson.TypeArray {
			return nil, "body: data is not an array of events"
		}
		arr, _ := data.Array()
		if len(arr) > MaxPayloadEvents {
			return nil, fmt.Sprintf("body: %d events, more than %d", len(arr), MaxPayloadEvents)
		}
		if len(arr) == 0 {
			return nil, "body: no events"
		}
		events := make([]params, len(arr))
		for i, ev := range arr {
			p := &events[i]
			p.raw = ev.MarshalTo(nil)
			o, err := ev.Object()
			if err != nil {
				continue // rejected by event: no e
			}
			o.Visit(func(k []byte, fv *fastjson.Value) {
				var val string
				switch fv.Type() {
				case fastjson.TypeString:
					val = string(fv.GetStringBytes())
				case fastjson.TypeNumber, fastjson.TypeTrue, fastjson.TypeFalse:
					val = string(fv.MarshalTo(nil))
				default:
					return // null, objects, arrays: not tracker parameters
				}
				p.keys = append(p.keys, string(k))
				p.vals = append(p.vals, val)
			})
		}
		return events, ""
	}
	if pl.Querystring != "" {
		q, err := url.ParseQuery(pl.Querystring)
		if err != nil {
			return nil, "querystring: " + pipeline.ShortReason(err.Error())
		}
		p := params{}
		s.names = s.names[:0]
		for k := range q {
			s.names = append(s.names, k)
		}
		slices.Sort(s.names)
		for _, k := range s.names {
			p.keys = append(p.keys, k)
			p.vals = append(p.vals, q[k][0])
		}
		return []params{p}, ""
	}
	return nil, "no events: neither a querystring nor a body"
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

// event fills e from one event's parameters and its payload; it returns
// the reason to reject the event, or "".
func (s *Snowplow) event(e *pipeline.Event, p *params, pl *snowplow.CollectorPayload) string {
	for i, v := range p.vals {
		if !utf8.ValidString(v) || !utf8.ValidString(p.keys[i]) {
			return fmt.Sprintf("%s: not valid UTF-8", truncateString(p.keys[i], 40))
		}
	}
	typ, _ := p.get("e")
	if typ == "" {
		return "e: missing event type"
	}
	if e.EventID, _ = p.get("eid"); e.EventID == "" {
		return "eid: missing event id"
	}
	name, known := eventNames[typ]
	if !known {
		name = typ
	}
	// event_time: Snowplow's derived timestamp.
	var ts [3]int64
	var has [3]bool
	for i, k := range []string{"ttm", "dtm", "stm"} {
		v, ok := p.get(k)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Sprintf("%s: %q is not epoch milliseconds", k, truncateString(v, 40))
		}
		ts[i], has[i] = n, true
	}
	switch {
	case has[0]:
		e.EventTime = ts[0]
	case has[1] && has[2] && pl.Timestamp > 0:
		e.EventTime = pl.Timestamp - (ts[2] - ts[1])
	case has[1]:
		e.EventTime = ts[1]
	default:
		e.EventTime = pl.Timestamp
	}
	set := func(k string, dst *string, f pipeline.Fields) {
		if v, ok := p.get(k); ok {
			*dst = v
			e.Present |= f
		}
	}
	set("uid", &e.UserID, pipeline.HasUserID)
	set("sid", &e.SessionID, pipeline.HasSessionID)
	set("aid", &e.AppID, pipeline.HasAppID)
	set("p", &e.Platform, pipeline.HasPlatform)
	set("url", &e.PageURL, pipeline.HasPageURL)
	set("refr", &e.Referrer, pipeline.HasReferrer)
	set("duid", &e.DomainUserID, pipeline.HasDomainUserID)
	if pl.Present&snowplow.HasNetworkUserID != 0 && pl.NetworkUserID != "" {
		e.NetworkUserID = pl.NetworkUserID
		e.Present |= pipeline.HasNetworkUserID
	}
	set("tnuid", &e.NetworkUserID, pipeline.HasNetworkUserID) // the tracker's overrides the cookie
	ua := pl.UserAgent
	if v, ok := p.get("ua"); ok {
		ua = v
	}
	if ua != "" {
		e.UserAgent = ua
		e.Present |= pipeline.HasUserAgent
	}
	ip := pl.IPAddress
	if v, ok := p.get("ip"); ok {
		ip = v
	}
	if ip != "" {
		if a, err := netip.ParseAddr(ip); err == nil {
			e.IP = a.Unmap()
		} else {
			e.IPInvalid = true
		}
	}

	// Contexts: cx (base64url) or co (JSON).
	if js, k, reason := s.selfDescribing(p, "co", "cx"); reason != "" {
		return reason
	} else if js != nil {
		if !strings.HasPrefix(string(js.GetStringBytes("schema")), contextsSchema) {
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
		e.Contexts = string(data.MarshalTo(nil))
		e.Present |= pipeline.HasContexts
	}

	switch typ {
	case "ue":
		js, k, reason := s.selfDescribing(p, "ue_pr", "ue_px")
		if reason != "" {
			return reason
		}
		if js == nil {
			return "ue: no ue_pr or ue_px"
		}
		if !strings.HasPrefix(string(js.GetStringBytes("schema")), unstructEventSchema) {
			return k + ": schema is not unstruct_event"
		}
		inner := js.Get("data")
		schema := string(inner.GetStringBytes("schema"))
		if inner == nil || schema == "" {
			return k + ": the event has no schema"
		}
		name = schemaName(schema)
		if name == "" {
			return fmt.Sprintf("%s: schema %q is not iglu:vendor/name/format/version", k, truncateString(schema, 100))
		}
		e.EventSchema = schema
		e.Present |= pipeline.HasEventSchema
		if d := inner.Get("data"); d != nil {
			e.Properties = string(d.MarshalTo(nil))
			e.Present |= pipeline.HasProperties
		}
	case "se":
		var b []byte
		for _, f := range [...]struct{ k, name string }{{"se_ca", "category"}, {"se_ac", "action"}, {"se_la", "label"}, {"se_pr", "property"}, {"se_va", "value"}} {
			v, ok := p.get(f.k)
			if !ok {
				continue
			}
			if b == nil {
				b = append(b, '{')
			} else {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, f.name...)
			b = append(b, '"', ':')
			if f.k == "se_va" {
				if x, err := strconv.ParseFloat(v, 64); err == nil && !strings.ContainsAny(v, "xXnN") {
					b = strconv.AppendFloat(b, x, 'g', -1, 64)
					continue
				}
			}
			b = appendJSONString(b, []byte(v))
		}
		if b != nil {
			e.Properties = string(append(b, '}'))
			e.Present |= pipeline.HasProperties
		}
	case "pv":
		if v, ok := p.get("page"); ok {
			e.Properties = `{"title":` + string(appendJSONString(nil, []byte(v))) + `}`
			e.Present |= pipeline.HasProperties
		}
	}
	e.EventName = name

	// Every other parameter, as strings, in extra (sorted: deterministic).
	s.names = s.names[:0]
	for _, k := range p.keys {
		if !mapped[k] && !(typ == "pv" && k == "page") {
			s.names = append(s.names, k)
		}
	}
	if len(s.names) > 0 {
		slices.Sort(s.names)
		s.names = slices.Compact(s.names)
		b := []byte{'{'}
		for i, k := range s.names {
			if i > 0 {
				b = append(b, ',')
			}
			v, _ := p.get(k)
			b = appendJSONString(b, []byte(k))
			b = append(b, ':')
			b = appendJSONString(b, []byte(v))
		}
		e.Extra = string(append(b, '}'))
		e.Present |= pipeline.HasExtra
	}
	return ""
}

// selfDescribing parses the JSON parameter plain, or else the base64
// parameter encoded; nil when the event has neither. k is the parameter
// read.
func (s *Snowplow) selfDescribing(p *params, plain, encoded string) (*fastjson.Value, string, string) {
	text, ok := p.get(plain)
	k := plain
	if !ok {
		b64, ok := p.get(encoded)
		if !ok {
			return nil, "", ""
		}
		k = encoded
		b, err := decodeBase64(b64)
		if err != nil {
			return nil, k, k + ": invalid base64"
		}
		text = string(b)
	}
	if !utf8.ValidString(text) {
		return nil, k, k + ": not valid UTF-8"
	}
	v, err := s.q.Parse(text)
	if err != nil {
		return nil, k, jsonReason(k+": invalid JSON: ", err)
	}
	if v.Type() != fastjson.TypeObject {
		return nil, k, k + ": not a JSON object"
	}
	return v, k, ""
}

// decodeBase64 reads the tracker's base64: URL-safe or standard, padded or
// not.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "+/") {
		return base64.RawStdEncoding.DecodeString(s)
	}
	return base64.RawURLEncoding.DecodeString(s)
}

// schemaName is the name of an Iglu schema URI
// (iglu:vendor/name/format/version), "" if it is not one.
func schemaName(uri string) string {
	rest, ok := strings.CutPrefix(uri, "iglu:")
	if !ok {
		return ""
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 || parts[0] == "" || parts[1] == "" || parts[2] == "" || parts[3] == "" {
		return ""
	}
	return parts[1]
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
