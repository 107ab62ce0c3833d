package collect_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/collect"
	"github.com/sluicedata/sluice/internal/snowplow"
	"github.com/sluicedata/sluice/internal/testkit"
)

const topic = "snowplow-raw"

func producer(t *testing.T, brokers ...string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordDeliveryTimeout(2*time.Second), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// consume reads n records of the topic.
func consume(t *testing.T, brokers []string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	if len(out) != n {
		t.Fatalf("%d records in %s, want %d", len(out), topic, n)
	}
	return out
}

const body = `{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[` +
	`{"e":"pv","eid":"e-1","url":"https://a/","stm":"2"},{"e":"se","eid":"e-2","se_ca":"c"},{"e":"pv","eid":"e-3"}]}`

// TestPostAndPixel: a tp2 POST of three events is three records keyed by
// eid, each a payload of one event with the request's IP (from a trusted
// proxy's X-Forwarded-For), user agent and no cookie header; a pixel GET
// is one record and a GIF; CORS answers an allowed origin.
func TestPostAndPixel(t *testing.T) {
	kc := testkit.Kafka(t, topic, 3)
	brokers := kc.ListenAddrs()
	c, err := collect.New(producer(t, brokers...), collect.Options{Topic: topic, CORSOrigins: []string{"https://shop.example.com"},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Cookie: collect.Cookie{Enabled: true, MaxAge: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodPost, srv.URL+collect.PathTP2, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set("User-Agent", "node-tracker-test")
	req.Header.Set("X-Forwarded-For", "198.51.100.7, 127.0.0.2")
	req.Header.Set("Origin", "https://shop.example.com")
	req.Header.Set("Cookie", "sp=nuid-from-cookie; other=secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://shop.example.com" {
		t.Fatalf("POST: %d, CORS %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	pix, err := http.Get(srv.URL + "/i?e=pv&eid=e-4&url=https%3A%2F%2Fb%2F")
	if err != nil {
		t.Fatal(err)
	}
	pix.Body.Close()
	if pix.StatusCode != 200 || pix.Header.Get("Content-Type") != "image/gif" {
		t.Fatalf("pixel: %d %s", pix.StatusCode, pix.Header.Get("Content-Type"))
	}
	recs := consume(t, brokers, 4)
	byKey := map[string]snowplow.CollectorPayload{}
	for _, r := range recs {
		var p snowplow.CollectorPayload
		if err := snowplow.Unmarshal(r.Value, &p); err != nil {
			t.Fatal(err)
		}
		byKey[string(r.Key)] = p
	}
	p := byKey["e-2"]
	var one struct {
		Data []map[string]string `json:"data"`
	}
	if err := json.Unmarshal([]byte(p.Body), &one); err != nil || len(one.Data) != 1 || one.Data[0]["se_ca"] != "c" {
		t.Errorf("record of e-2: body %s (%v)", p.Body, err)
	}
	if p.IPAddress != "198.51.100.7" || p.UserAgent != "node-tracker-test" || p.Path != collect.PathTP2 || p.NetworkUserID != "nuid-from-cookie" {
		t.Errorf("payload %+v", p)
	}
	for _, h := range p.Headers {
		if strings.HasPrefix(h, "Cookie") || strings.Contains(h, "secret") {
			t.Errorf("header %q in the raw stream", h)
		}
	}
	if g := byKey["e-4"]; !strings.Contains(g.Querystring, "eid=e-4") || g.Path != collect.PathPixel {
		t.Errorf("pixel payload %+v", g)
	}
}

// TestRefusals: 413 over max_body, 400 for a body that is not a payload,
// 503 with Retry-After when the buffer cannot take the request and when
// Kafka is unreachable (and /readyz's Ready says so).
func TestRefusals(t *testing.T) {
	kc := testkit.Kafka(t, topic, 1)
	c, _ := collect.New(producer(t, kc.ListenAddrs()...), collect.Options{Topic: topic, MaxBody: 1 << 10, MaxBuffered: 300})
	srv := httptest.NewServer(c)
	defer srv.Close()
	post := func(url, b string) *http.Response {
		resp, err := http.Post(url+collect.PathTP2, "application/json", strings.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := post(srv.URL, `{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[{"e":"pv","eid":"`+strings.Repeat("x", 2000)+`"}]}`); r.StatusCode != 413 {
		t.Errorf("oversized: %d", r.StatusCode)
	}
	for _, b := range []string{`not json`, `{"schema":"iglu:x/y/jsonschema/1-0-0","data":[{}]}`, `{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[]}`} {
		if r := post(srv.URL, b); r.StatusCode != 400 {
			t.Errorf("%s: %d, want 400", b, r.StatusCode)
		}
	}
	if r := post(srv.URL, body); r.StatusCode != 503 || r.Header.Get("Retry-After") == "" {
		t.Errorf("over max_buffered: %d, Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}

	// A broker that does not answer.
	down, _ := collect.New(producer(t, "127.0.0.1:1"), collect.Options{Topic: topic, ProduceTimeout: time.Second})
	dsrv := httptest.NewServer(down)
	defer dsrv.Close()
	if r := post(dsrv.URL, body); r.StatusCode != 503 || r.Header.Get("Retry-After") == "" {
		t.Errorf("kafka down: %d", r.StatusCode)
	}
	if down.Ready() == nil {
		t.Error("ready while Kafka writes fail")
	}
}
