package decode

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/internal/snowplow"
	"github.com/sluicedata/sluice/pipeline"
)

const collectorTS = int64(1796153430700)

func payload(query, body string) []byte {
	p := snowplow.CollectorPayload{Schema: snowplow.Schema, IPAddress: "203.0.113.9", Timestamp: collectorTS,
		Encoding: "UTF-8", Collector: "test", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", NetworkUserID: "nuid-1",
		Querystring: query, Body: body}
	return p.Marshal(nil)
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func tp2(events ...map[string]string) string {
	b, _ := json.Marshal(map[string]any{"schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4", "data": events})
	return string(b)
}

func decodeAll(t *testing.T, recs ...[]byte) []pipeline.Event {
	t.Helper()
	b := &pipeline.Batch{Topic: "raw", Partition: 1}
	for i, r := range recs {
		b.Events = append(b.Events, pipeline.Event{Topic: "raw", Partition: 1, Offset: int64(10 + i), KafkaTime: 5, Raw: r})
	}
	if err := NewSnowplow(nil).Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return b.Events
}

var contexts = map[string]any{
	"schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
	"data":   []any{map[string]any{"schema": "iglu:com.gitlab/gitlab_standard/jsonschema/1-0-9", "data": map[string]any{"environment": "production"}}},
}

// TestSnowplowGET: a pixel's querystring is one event, mapped as the
// README's table says.
func TestSnowplowGET(t *testing.T) {
	q := "e=pv&eid=4f601d33-0000-4000-8000-000000000001&url=https%3A%2F%2Fshop.example.com%2Fa&page=Groups&refr=https%3A%2F%2Fwww.google.com%2F" +
		"&uid=user-42&duid=duid-abc&sid=sess-1&aid=gitlab&p=web&tv=js-3.0&tna=sp1&dtm=1796153430595&stm=1796153430601&res=1920x1080&co=" +
		url.QueryEscape(mustJSON(contexts))
	evs := decodeAll(t, payload(q, ""))
	if len(evs) != 1 || evs[0].State != pipeline.Keep {
		t.Fatalf("%+v", evs)
	}
	e := evs[0]
	checks := []struct{ name, got, want string }{
		{"event_id", e.EventID, "4f601d33-0000-4000-8000-000000000001"},
		{"event_name", e.EventName, "page_view"},
		{"page_url", e.PageURL, "https://shop.example.com/a"},
		{"referrer", e.Referrer, "https://www.google.com/"},
		{"user id", e.UserID, "user-42"},
		{"duid", e.DomainUserID, "duid-abc"},
		{"network user id", e.NetworkUserID, "nuid-1"},
		{"session", e.SessionID, "sess-1"},
		{"app", e.AppID, "gitlab"},
		{"platform", e.Platform, "web"},
		{"ua", e.UserAgent, "Mozilla/5.0 (X11; Linux x86_64)"},
		{"ip", e.IP.String(), "203.0.113.9"},
		{"properties", e.Properties, `{"title":"Groups"}`},
		{"contexts", e.Contexts, `[{"data":{"environment":"production"},"schema":"iglu:com.gitlab/gitlab_standard/jsonschema/1-0-9"}]`},
		{"extra", e.Extra, `{"dtm":"1796153430595","res":"1920x1080","stm":"1796153430601","tna":"sp1","tv":"js-3.0"}`},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	// collector timestamp − (stm − dtm)
	if want := collectorTS - 6; e.EventTime != want {
		t.Errorf("event_time %d, want %d", e.EventTime, want)
	}
	if e.Index != 0 || e.Offset != 10 || e.Has(pipeline.HasEventSchema) {
		t.Errorf("lineage %d/%d, event_schema present %v", e.Offset, e.Index, e.Has(pipeline.HasEventSchema))
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestSnowplowPOST: a tp2 body of page view, structured and
// self-describing events (with contexts) is three events, src_index 0-2.
func TestSnowplowPOST(t *testing.T) {
	ue := map[string]any{"schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
		"data": map[string]any{"schema": "iglu:com.gitlab/custom_event/jsonschema/1-0-0", "data": map[string]any{"n": 3, "s": "x"}}}
	body := tp2(
		map[string]string{"e": "pv", "eid": "e0", "url": "https://a/", "page": "A", "dtm": "1000", "ttm": "900", "stm": "1100", "p": "srv"},
		map[string]string{"e": "se", "eid": "e1", "se_ca": "projects:new", "se_ac": "click_button", "se_la": "create", "se_pr": "blank", "se_va": "1", "cx": b64(contexts)},
		map[string]string{"e": "ue", "eid": "e2", "ue_px": b64(ue), "ip": "2001:db8::1", "ua": "curl/8.0", "tnuid": "tracker-nuid"},
	)
	evs := decodeAll(t, payload("", body))
	if len(evs) != 3 {
		t.Fatalf("%d events", len(evs))
	}
	for i, e := range evs {
		if e.State != pipeline.Keep || e.Index != int32(i) || e.Offset != 10 {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
	if e := evs[0]; e.EventTime != 900 || e.Properties != `{"title":"A"}` || e.Platform != "srv" {
		t.Errorf("pv: time %d (ttm wins), properties %s", e.EventTime, e.Properties)
	}
	if e := evs[1]; e.EventName != "struct" || e.Properties != `{"category":"projects:new","action":"click_button","label":"create","property":"blank","value":1}` || !e.Has(pipeline.HasContexts) {
		t.Errorf("se: %s %s contexts %v", e.EventName, e.Properties, e.Has(pipeline.HasContexts))
	}
	if e := evs[1]; e.EventTime != collectorTS {
		t.Errorf("se without device times: %d, want the collector's", e.EventTime)
	}
	e := evs[2]
	if e.EventName != "custom_event" || e.EventSchema != "iglu:com.gitlab/custom_event/jsonschema/1-0-0" || e.Properties != `{"n":3,"s":"x"}` {
		t.Errorf("ue: %s %s %s", e.EventName, e.EventSchema, e.Properties)
	}
	if e.IP.String() != "2001:db8::1" || e.UserAgent != "curl/8.0" || e.NetworkUserID != "tracker-nuid" || e.Has(pipeline.HasExtra) {
		t.Errorf("ue overrides: ip %s ua %s nuid %s extra %q", e.IP, e.UserAgent, e.NetworkUserID, e.Extra)
	}
}

// TestSnowplowRejects: a record that is not a payload is one rejected
// event, raw the record; a bad event inside a good payload is its own,
// raw its JSON, src_index set, and the good ones pass.
func TestSnowplowRejects(t *testing.T) {
	good := map[string]string{"e": "pv", "eid": "ok"}
	wrongSchema := snowplow.CollectorPayload{Schema: "iglu:com.acme/other/thrift/1-0-0", Querystring: "e=pv&eid=x"}
	big := make([]map[string]string, MaxPayloadEvents+1)
	for i := range big {
		big[i] = good
	}
	whole := []struct {
		name   string
		rec    []byte
		reason string
	}{
		{"json, not thrift", []byte(`{"event_id":"x"}`), "not a Snowplow CollectorPayload"},
		{"truncated thrift", payload("e=pv&eid=x", "")[:20], "not a Snowplow CollectorPayload"},
		{"wrong schema", wrongSchema.Marshal(nil), `schema "iglu:com.acme/other/thrift/1-0-0"`},
		{"body not JSON", payload("", "e=pv&eid=x"), "body: invalid JSON"},
		{"body not payload_data", payload("", `{"schema":"iglu:x/y/jsonschema/1-0-0","data":[]}`), "is not payload_data"},
		{"no events", payload("", ""), "no events"},
		{"oversized", payload("", tp2(big...)), "more than 10000"},
		{"tombstone", nil, ReasonTombstone},
	}
	for _, c := range whole {
		evs := decodeAll(t, c.rec)
		if len(evs) != 1 || evs[0].State != pipeline.Rejected || !strings.Contains(evs[0].RejectReason, c.reason) ||
			string(evs[0].Raw) != string(c.rec) || evs[0].Index != 0 {
			t.Errorf("%s: %d events, first %q (%v)", c.name, len(evs), evs[0].RejectReason, evs[0].State)
		}
	}
	inner := []struct {
		name   string
		ev     map[string]string
		reason string
	}{
		{"missing eid", map[string]string{"e": "pv"}, "eid: missing"},
		{"missing e", map[string]string{"eid": "x"}, "e: missing"},
		{"bad base64", map[string]string{"e": "se", "eid": "x", "cx": "%%%not base64"}, "cx: invalid base64"},
		{"invalid JSON inside", map[string]string{"e": "ue", "eid": "x", "ue_pr": `{"schema":`}, "ue_pr: invalid JSON"},
		{"ue without event schema", map[string]string{"e": "ue", "eid": "x", "ue_pr": `{"schema":"iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0","data":{}}`}, "has no schema"},
		{"contexts not contexts", map[string]string{"e": "pv", "eid": "x", "co": `{"schema":"iglu:a/b/jsonschema/1-0-0","data":[]}`}, "co: schema is not contexts"},
		{"bad timestamp", map[string]string{"e": "pv", "eid": "x", "dtm": "yesterday"}, `dtm: "yesterday" is not epoch milliseconds`},
	}
	for _, c := range inner {
		evs := decodeAll(t, payload("", tp2(good, c.ev, good)))
		if len(evs) != 3 || evs[0].State != pipeline.Keep || evs[2].State != pipeline.Keep {
			t.Fatalf("%s: %+v", c.name, evs)
		}
		e := evs[1]
		if e.State != pipeline.Rejected || !strings.Contains(e.RejectReason, c.reason) || e.Index != 1 || e.RejectStage != StageName {
			t.Errorf("%s: %v %q index %d", c.name, e.State, e.RejectReason, e.Index)
		}
		var back map[string]string
		if err := json.Unmarshal(e.Raw, &back); err != nil || fmt.Sprint(back) != fmt.Sprint(c.ev) {
			t.Errorf("%s: raw %s, want the event's JSON", c.name, e.Raw)
		}
	}
}

// TestSnowplowKeepsOtherStates: events already rejected upstream pass
// through, and a batch of several records keeps offset order.
func TestSnowplowBatchOrder(t *testing.T) {
	evs := decodeAll(t, payload("", tp2(map[string]string{"e": "pv", "eid": "a"}, map[string]string{"e": "pv", "eid": "b"})),
		payload("e=pv&eid=c", ""))
	var got []string
	for _, e := range evs {
		got = append(got, fmt.Sprintf("%d/%d/%s", e.Offset, e.Index, e.EventID))
	}
	if strings.Join(got, " ") != "10/0/a 10/1/b 11/0/c" {
		t.Errorf("order %v", got)
	}
}

func FuzzSnowplow(f *testing.F) {
	f.Add(payload("e=pv&eid=x&cx="+b64(contexts), ""))
	f.Add(payload("", tp2(map[string]string{"e": "ue", "eid": "y", "ue_pr": `{"schema":"iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0","data":{"schema":"iglu:a/b/jsonschema/1-0-0","data":{}}}`})))
	f.Add([]byte{11, 0x7a, 0x69, 0, 0, 0, 1, 'x', 0})
	s := NewSnowplow(nil)
	f.Fuzz(func(t *testing.T, raw []byte) {
		b := &pipeline.Batch{Events: []pipeline.Event{{Offset: 1, Raw: raw}}}
		if err := s.Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		if len(b.Events) == 0 || len(b.Events) > MaxPayloadEvents {
			t.Fatalf("%d events from one record", len(b.Events))
		}
		for i, e := range b.Events {
			switch {
			case e.Index != int32(i) && len(b.Events) > 1:
				t.Fatalf("event %d has index %d", i, e.Index)
			case e.State == pipeline.Rejected && (e.RejectReason == "" || len(e.RejectReason) > pipeline.MaxReasonLen):
				t.Fatalf("reason %q", e.RejectReason)
			case e.State == pipeline.Keep && e.EventID == "":
				t.Fatal("a kept event without an id")
			}
		}
	})
}

// TestSnowplowEventNames: every event type of the tracker protocol.
func TestSnowplowEventNames(t *testing.T) {
	ue := `{"schema":"iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0","data":{"schema":"iglu:com.acme/link_click/jsonschema/1-0-1","data":{"target":"x"}}}`
	for typ, want := range map[string]string{"pv": "page_view", "pp": "page_ping", "se": "struct", "tr": "transaction",
		"ti": "transaction_item", "ue": "link_click", "ad": "ad"} {
		ev := map[string]string{"e": typ, "eid": "x-" + typ}
		if typ == "ue" {
			ev["ue_pr"] = ue
		}
		evs := decodeAll(t, payload("", tp2(ev)))
		if len(evs) != 1 || evs[0].State != pipeline.Keep || evs[0].EventName != want {
			t.Errorf("e=%s: %+v, want event_name %s", typ, evs[0], want)
		}
	}
}

func TestIsJSONNumber(t *testing.T) {
	for s, want := range map[string]bool{"1": true, "-0.5": true, "1e3": true, "2.5E-7": true, "0": true,
		"": false, "01": false, "1.": false, ".5": false, "1e": false, "NaN": false, "0x10": false, "1 ": false, "-": false} {
		if got := isJSONNumber([]byte(s)); got != want {
			t.Errorf("%q: %v, want %v", s, got, want)
		}
	}
}
