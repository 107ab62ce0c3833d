package parquet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/internal/arrowread"
	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/sinks/objstore"
)

const hour = 3_600_000

// t0 is 2026-03-01T12:00:00Z in ms.
const t0 = int64(1772366400000)

func batch() *pipeline.Batch {
	ev := func(off int64, kt int64) pipeline.Event {
		return pipeline.Event{Topic: "events", Partition: 3, Offset: off, KafkaTime: kt, Raw: []byte(`{"raw":1}`),
			EventID: "id", EventName: "page_view", EventTime: kt - 5, UserID: "raw-user", HasUserID: true}
	}
	b := &pipeline.Batch{Topic: "events", Partition: 3}
	b.Events = append(b.Events, ev(10, t0), ev(11, t0+hour+1), ev(12, t0+2), ev(13, t0+3), ev(14, t0+4))
	b.Events[1].Geo = pipeline.Geo{Latitude: 0, Longitude: 0, HasLocation: true, CountryCode: "GH"}
	b.Events[1].UA = pipeline.UserAgent{Known: true, IsBot: false, Browser: "Chrome"}
	b.Events[2].Reject("decode", "invalid JSON: boom")
	b.Events[2].Raw = []byte{0xff, 0x00, 'x'}
	b.Events[3].State = pipeline.Dropped
	return b
}

func TestFlushLayoutAndSchema(t *testing.T) {
	dir := t.TempDir()
	store, err := objstore.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.OpenPartition("events", 3)
	if err := p.Write(batch()); err != nil {
		t.Fatal(err)
	}
	if rows, _ := p.Pending(); rows != 4 {
		t.Errorf("pending rows %d, want 4 (dropped not counted)", rows)
	}
	res, err := p.Flush(context.Background(), 10, 14)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"events/date=2026-03-01/hour=12/events+3+00000000000000000010+00000000000000000014.parquet",
		"events/date=2026-03-01/hour=13/events+3+00000000000000000010+00000000000000000014.parquet",
		"rejected/date=2026-03-01/hour=12/events+3+00000000000000000010+00000000000000000014.parquet",
	}
	var got []string
	for _, f := range res.Files {
		got = append(got, f.Key)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rows, bytes := p.Pending(); rows != 0 || bytes != 0 {
		t.Errorf("pending after flush: %d rows %d bytes", rows, bytes)
	}

	ev, err := arrowread.Read(context.Background(), filepath.Join(dir, want[0]), -1)
	if err != nil {
		t.Fatal(err)
	}
	if ev.NumRows != 2 {
		t.Errorf("hour 12 events: %d rows, want 2 (offsets 10, 13 dropped, 12 rejected)", ev.NumRows)
	}
	for _, f := range ev.Schema.Fields() {
		switch f.Name {
		case "event_time", "kafka_time":
			if f.Type.String() != "timestamp[ms, tz=UTC]" || f.Nullable {
				t.Errorf("%s: %s nullable=%v, want required timestamp[ms, tz=UTC]", f.Name, f.Type, f.Nullable)
			}
		case "event_id", "event_name", "src_topic", "src_partition", "src_offset":
			if f.Nullable {
				t.Errorf("%s must be required", f.Name)
			}
		default:
			if !f.Nullable {
				t.Errorf("%s must be optional", f.Name)
			}
		}
	}
	if !strings.Contains(ev.ParquetSchema, "TIMESTAMP") && !strings.Contains(ev.ParquetSchema, "Timestamp") {
		t.Logf("parquet schema: %s", ev.ParquetSchema)
	}
	r := ev.Rows[0]
	if r["geo_latitude"] != nil || r["ua_is_bot"] != nil || r["app_id"] != nil {
		t.Errorf("unknown values must be null: %v", r)
	}
	if r["src_offset"] != int64(10) || r["src_partition"] != int32(3) || r["src_topic"] != "events" {
		t.Errorf("lineage: %v", r)
	}
	for k, v := range r {
		if s, ok := v.(string); ok && strings.Contains(s, "raw-user") {
			t.Errorf("raw user id leaked into %s", k)
		}
	}

	ev13, err := arrowread.Read(context.Background(), filepath.Join(dir, want[1]), -1)
	if err != nil {
		t.Fatal(err)
	}
	if r := ev13.Rows[0]; r["geo_latitude"] != float64(0) || r["ua_is_bot"] != false || r["geo_country_code"] != "GH" {
		t.Errorf("known zero values must not be null: %v", r)
	}

	rj, err := arrowread.Read(context.Background(), filepath.Join(dir, want[2]), -1)
	if err != nil {
		t.Fatal(err)
	}
	if rj.NumRows != 1 {
		t.Fatalf("rejected rows %d", rj.NumRows)
	}
	if f, _ := rj.Schema.FieldsByName("raw"); len(f) != 1 || f[0].Type.String() != "binary" {
		t.Errorf("raw must be plain binary, got %v", f)
	}
	rr := rj.Rows[0]
	if rr["stage"] != "decode" || rr["error"] != "invalid JSON: boom" || !bytes.Equal(rr["raw"].([]byte), []byte{0xff, 0x00, 'x'}) || rr["src_offset"] != int64(12) {
		t.Errorf("rejected row: %v", rr)
	}
}

// TestFlushReproducible: the same records as the same range give the same
// objects (names and rows). Bytes may differ: parquet-go's encoding choices
// can depend on the state of its buffer pools (seen under -race).
func TestFlushReproducible(t *testing.T) {
	read := func() map[string][]byte {
		dir := t.TempDir()
		store, _ := objstore.NewDir(dir)
		s, _ := New(store, Options{})
		p, _ := s.OpenPartition("events", 3)
		if err := p.Write(batch()); err != nil {
			t.Fatal(err)
		}
		res, err := p.Flush(context.Background(), 10, 14)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]byte{}
		for _, f := range res.Files {
			out[f.Key], _ = os.ReadFile(filepath.Join(dir, f.Key))
		}
		return out
	}
	a, b := read(), read()
	if len(a) != 3 || len(a) != len(b) {
		t.Fatalf("%d vs %d files", len(a), len(b))
	}
	for k := range a {
		if !sameRows(t, a[k], b[k]) {
			t.Errorf("%s differs between runs", k)
		}
	}
}

// sameRows compares two Parquet files by their rows, read with Arrow.
func sameRows(t *testing.T, a, b []byte) bool {
	t.Helper()
	read := func(data []byte) []map[string]any {
		p := filepath.Join(t.TempDir(), "f.parquet")
		os.WriteFile(p, data, 0o644)
		f, err := arrowread.Read(context.Background(), p, -1)
		if err != nil {
			t.Fatal(err)
		}
		return f.Rows
	}
	return reflect.DeepEqual(read(a), read(b))
}

// failing fails the first n Puts, then passes them to the directory store.
type failing struct {
	*objstore.Dir
	n int
}

func (f *failing) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if f.n > 0 {
		f.n--
		return errors.New("injected store failure")
	}
	return f.Dir.Put(ctx, key, r, size)
}

func TestFlushRetryKeepsData(t *testing.T) {
	dir := t.TempDir()
	d, _ := objstore.NewDir(dir)
	store := &failing{Dir: d, n: 2}
	s, _ := New(store, Options{})
	p, _ := s.OpenPartition("events", 3)
	if err := p.Write(batch()); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := p.Flush(context.Background(), 10, 14); err == nil {
			t.Fatalf("flush %d succeeded through a failing store", i)
		}
		if err := p.Write(batch()); err == nil {
			t.Fatal("write accepted while a flush is unfinished")
		}
	}
	res, err := p.Flush(context.Background(), 10, 14)
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	for _, f := range res.Files {
		rows += f.Rows
	}
	if rows != 4 {
		t.Errorf("rows after retries %d, want 4", rows)
	}
	keys, _ := d.List(context.Background(), "")
	if len(keys) != 3 {
		t.Errorf("objects %v", keys)
	}
}

func TestDisableRejected(t *testing.T) {
	store, _ := objstore.NewDir(t.TempDir())
	s, _ := New(store, Options{DisableRejected: true, Compression: "snappy"})
	p, _ := s.OpenPartition("events", 3)
	_ = p.Write(batch())
	res, err := p.Flush(context.Background(), 10, 14)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Files {
		if f.Rejected {
			t.Errorf("rejected file written: %s", f.Key)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	if _, err := New(nil, Options{Compression: "brotli"}); err == nil {
		t.Error("unknown codec accepted")
	}
}

// TestStagedThenStreamed: a file starts staged and gets a writer past
// stageRows; every row and every nullable value survives both paths.
func TestStagedThenStreamed(t *testing.T) {
	dir := t.TempDir()
	store, _ := objstore.NewDir(dir)
	s, _ := New(store, Options{})
	p, _ := s.OpenPartition("events", 1)
	const n = 3*stageRows + 17
	var off int64
	for _, size := range []int{stageRows / 2, stageRows, n - stageRows/2 - stageRows} {
		b := &pipeline.Batch{}
		for range size {
			e := pipeline.Event{Topic: "events", Partition: 1, Offset: off, KafkaTime: t0 + off, EventID: fmt.Sprint(off), EventName: "x"}
			if off%3 == 0 {
				e.Geo = pipeline.Geo{HasLocation: true, Latitude: float64(off % 7), Longitude: -float64(off)}
			}
			if off%2 == 0 {
				e.UA = pipeline.UserAgent{Known: true, IsBot: off%4 == 0}
			}
			b.Events = append(b.Events, e)
			off++
		}
		if err := p.Write(b); err != nil {
			t.Fatal(err)
		}
		if _, bytes := p.Pending(); bytes <= 0 {
			t.Fatal("no pending bytes")
		}
	}
	res, err := p.Flush(context.Background(), 0, off-1)
	if err != nil || len(res.Files) != 1 || res.Files[0].Rows != n {
		t.Fatalf("flush: %+v %v", res, err)
	}
	f, err := arrowread.Read(context.Background(), filepath.Join(dir, res.Files[0].Key), -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Rows) != n {
		t.Fatalf("%d rows", len(f.Rows))
	}
	for _, r := range f.Rows {
		o := r["src_offset"].(int64)
		if r["event_id"] != fmt.Sprint(o) {
			t.Fatalf("row %d: event_id %v", o, r["event_id"])
		}
		if (o%3 == 0) != (r["geo_latitude"] != nil) || (o%3 == 0 && r["geo_latitude"] != float64(o%7)) {
			t.Errorf("row %d: latitude %v", o, r["geo_latitude"])
		}
		if (o%2 == 0) != (r["ua_is_bot"] != nil) || (o%2 == 0 && r["ua_is_bot"] != (o%4 == 0)) {
			t.Errorf("row %d: ua_is_bot %v", o, r["ua_is_bot"])
		}
	}
}

// TestReusedWritersReproduce: writers come back from the pool between
// flushes; a range flushed again through reused writers is byte-identical.
func TestReusedWritersReproduce(t *testing.T) {
	dir := t.TempDir()
	store, _ := objstore.NewDir(dir)
	s, _ := New(store, Options{})
	p, _ := s.OpenPartition("events", 3)
	flush := func() map[string][]byte {
		out := map[string][]byte{}
		for range 2 { // a big batch (streamed) and the small one (staged)
			b := batch()
			for i := range 2 * stageRows {
				e := b.Events[0]
				e.Offset = int64(100 + i)
				b.Events = append(b.Events, e)
			}
			if err := p.Write(b); err != nil {
				t.Fatal(err)
			}
		}
		res, err := p.Flush(context.Background(), 10, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range res.Files {
			out[f.Key], _ = os.ReadFile(filepath.Join(dir, f.Key))
		}
		return out
	}
	first, again := flush(), flush()
	if len(first) == 0 || len(first) != len(again) {
		t.Fatalf("%d vs %d files", len(first), len(again))
	}
	for k := range first {
		if !sameRows(t, first[k], again[k]) {
			t.Errorf("%s differs when written by a reused writer", k)
		}
	}
}
