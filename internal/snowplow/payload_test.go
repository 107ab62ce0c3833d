package snowplow_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/sluicedata/sluice/internal/snowplow"
)

// thriftEncode writes p with Apache Thrift's own binary protocol, field by
// field as collector-payload.thrift declares them, plus an unknown field
// (a struct) the reader must skip.
func thriftEncode(t *testing.T, p snowplow.CollectorPayload) []byte {
	t.Helper()
	ctx := context.Background()
	buf := thrift.NewTMemoryBuffer()
	pr := thrift.NewTBinaryProtocolConf(buf, nil)
	str := func(name string, id int16, v string) {
		pr.WriteFieldBegin(ctx, name, thrift.STRING, id)
		pr.WriteString(ctx, v)
		pr.WriteFieldEnd(ctx)
	}
	pr.WriteStructBegin(ctx, "CollectorPayload")
	str("schema", 31337, p.Schema)
	str("ipAddress", 100, p.IPAddress)
	pr.WriteFieldBegin(ctx, "timestamp", thrift.I64, 200)
	pr.WriteI64(ctx, p.Timestamp)
	pr.WriteFieldEnd(ctx)
	str("encoding", 210, p.Encoding)
	str("collector", 220, p.Collector)
	str("userAgent", 300, p.UserAgent)
	str("path", 320, p.Path)
	str("querystring", 330, p.Querystring)
	str("body", 340, p.Body)
	pr.WriteFieldBegin(ctx, "headers", thrift.LIST, 350)
	pr.WriteListBegin(ctx, thrift.STRING, len(p.Headers))
	for _, h := range p.Headers {
		pr.WriteString(ctx, h)
	}
	pr.WriteListEnd(ctx)
	pr.WriteFieldEnd(ctx)
	// A field of a later version: a struct with a map and a list of i32.
	pr.WriteFieldBegin(ctx, "future", thrift.STRUCT, 999)
	pr.WriteStructBegin(ctx, "Future")
	pr.WriteFieldBegin(ctx, "m", thrift.MAP, 1)
	pr.WriteMapBegin(ctx, thrift.STRING, thrift.I32, 1)
	pr.WriteString(ctx, "k")
	pr.WriteI32(ctx, 7)
	pr.WriteMapEnd(ctx)
	pr.WriteFieldEnd(ctx)
	pr.WriteFieldBegin(ctx, "l", thrift.LIST, 2)
	pr.WriteListBegin(ctx, thrift.I32, 2)
	pr.WriteI32(ctx, 1)
	pr.WriteI32(ctx, 2)
	pr.WriteListEnd(ctx)
	pr.WriteFieldEnd(ctx)
	pr.WriteFieldStop(ctx)
	pr.WriteStructEnd(ctx)
	pr.WriteFieldEnd(ctx)
	str("contentType", 360, p.ContentType)
	str("hostname", 400, p.Hostname)
	str("networkUserId", 410, p.NetworkUserID)
	pr.WriteFieldStop(ctx)
	pr.WriteStructEnd(ctx)
	pr.Flush(ctx)
	return buf.Bytes()
}

var sample = snowplow.CollectorPayload{
	Schema: snowplow.Schema, IPAddress: "203.0.113.9", Timestamp: 1796153430700, Encoding: "UTF-8",
	Collector: "sluice-test", UserAgent: "Mozilla/5.0", Path: "/com.snowplowanalytics.snowplow/tp2",
	Querystring: "", Body: `{"schema":"x","data":[]}`, Headers: []string{"Host: c.example.com", "X-Forwarded-For: 10.0.0.1"},
	ContentType: "application/json; charset=UTF-8", Hostname: "c.example.com", NetworkUserID: "nuid-1",
}

// TestAgreesWithApacheThrift: a payload written by Apache Thrift's binary
// protocol reads back field by field (the unknown field skipped), and
// Marshal's bytes read back the same.
func TestAgreesWithApacheThrift(t *testing.T) {
	var got snowplow.CollectorPayload
	if err := snowplow.Unmarshal(thriftEncode(t, sample), &got); err != nil {
		t.Fatal(err)
	}
	want := sample
	got.Present, want.Present = 0, 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read\n%+v\nwant\n%+v", got, want)
	}
	var again snowplow.CollectorPayload
	if err := snowplow.Unmarshal(sample.Marshal(nil), &again); err != nil {
		t.Fatal(err)
	}
	again.Present = 0
	if !reflect.DeepEqual(again, want) {
		t.Errorf("Marshal round trip\n%+v", again)
	}
}

func TestMalformed(t *testing.T) {
	good := sample.Marshal(nil)
	for name, b := range map[string][]byte{
		"empty":                        {},
		"truncated":                    good[:len(good)/2],
		"no stop":                      good[:len(good)-1],
		"trailing bytes":               append(append([]byte{}, good...), 0, 0),
		"length past the end":          {11, 0x7a, 0x69, 0x7f, 0xff, 0xff, 0xff, 'a'},
		"wrong type for a known field": {8, 0x00, 0x64, 0, 0, 0, 1, 0},
		"unknown type":                 {99, 0, 1, 0},
		"json":                         []byte(`{"event_id":"e1"}`),
	} {
		var p snowplow.CollectorPayload
		if err := snowplow.Unmarshal(b, &p); !errors.Is(err, snowplow.ErrNotPayload) {
			t.Errorf("%s: %v, want ErrNotPayload", name, err)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(sample.Marshal(nil))
	f.Add([]byte{12, 0, 1, 12, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p snowplow.CollectorPayload
		if err := snowplow.Unmarshal(b, &p); err == nil {
			var q snowplow.CollectorPayload
			if err := snowplow.Unmarshal(p.Marshal(nil), &q); err != nil {
				t.Fatalf("a payload read does not read back after Marshal: %v", err)
			}
		}
	})
}
