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
	"unsafe"

	pqfile "github.com/apache/arrow/go/v15/parquet/file"
	"github.com/klauspost/compress/zstd"
	pq "github.com/parquet-go/parquet-go"

	"github.com/sluicedata/sluice/internal/arrowread"
	"github.com/sluicedata/sluice/internal/hugemem"
	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/sinks/objstore"
)

const hour = 3_600_000

// t0 is 2026-03-01T12:00:00Z in ms.
const t0 = int64(1772366400000)

func batch() *pipeline.Batch {
	ev := func(off int64, kt int64) pipeline.Event {
		return pipeline.Event{Topic: "events", Partition: 3, Offset: off, KafkaTime: kt, Raw: []byte(`{"raw":1}`),
			EventID: "id", EventName: "page_view", EventTime: kt - 5, UserID: "raw-user", Present: pipeline.HasUserID}
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
	if b := p.Pending(); b.Rows != 4 {
		t.Errorf("pending rows %d, want 4 (dropped not counted)", b.Rows)
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
	if b := p.Pending(); b != (pipeline.Buffered{}) {
		t.Errorf("pending after flush: %+v", b)
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
		case "event_id", "event_name", "src_topic", "src_partition", "src_offset", "src_index":
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

// bothModes runs f with files built in memory and on disk.
func bothModes(t *testing.T, f func(t *testing.T, o Options)) {
	t.Run("memory", func(t *testing.T) { f(t, Options{}) })
	t.Run("spool", func(t *testing.T) {
		spool := t.TempDir()
		f(t, Options{SpoolDir: spool})
		if left, _ := filepath.Glob(filepath.Join(spool, spoolPrefix+"*", "*.part")); len(left) != 0 {
			t.Errorf("spool files left: %v", left)
		}
	})
}

func TestFlushRetryKeepsData(t *testing.T) { bothModes(t, testFlushRetryKeepsData) }

func testFlushRetryKeepsData(t *testing.T, o Options) {
	dir := t.TempDir()
	d, _ := objstore.NewDir(dir)
	store := &failing{Dir: d, n: 2}
	s, _ := New(store, o)
	defer s.Close()
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
	if _, err := New(nil, Options{ZstdLevel: "medium"}); err == nil || !strings.Contains(err.Error(), `zstd level "medium"`) {
		t.Errorf("unknown zstd level: %v", err)
	}
	for level, want := range map[string]zstd.EncoderLevel{"": zstd.SpeedFastest, "fastest": zstd.SpeedFastest, "default": zstd.SpeedDefault, "best": zstd.SpeedBestCompression} {
		c, err := codec("zstd", level)
		if z, ok := c.(*zstdCodec); err != nil || !ok || z.level != want {
			t.Errorf("zstd level %q: %v %v", level, c, err)
		}
	}
}

// TestStagedThenStreamed: a file starts staged and gets a writer past
// stageRows; every row and every nullable value survives both paths. The
// events' text aliases one buffer that is overwritten after each Write,
// as decode's arena is reused for the next batch: the sink keeps copies.
func TestStagedThenStreamed(t *testing.T) { bothModes(t, testStagedThenStreamed) }

func testStagedThenStreamed(t *testing.T, o Options) {
	dir := t.TempDir()
	store, _ := objstore.NewDir(dir)
	s, _ := New(store, o)
	defer s.Close()
	p, _ := s.OpenPartition("events", 1)
	const n = 3*stageRows + 17
	var off int64
	arena := make([]byte, 0, 64*n)
	text := func(v string) string {
		at := len(arena)
		arena = append(arena, v...)
		return unsafe.String(&arena[at], len(v))
	}
	for _, size := range []int{stageRows / 2, stageRows, n - stageRows/2 - stageRows} {
		b := &pipeline.Batch{}
		arena = arena[:0]
		for range size {
			e := pipeline.Event{Topic: "events", Partition: 1, Offset: off, KafkaTime: t0 + off, EventID: text(fmt.Sprint(off)), EventName: text("x"),
				PageURL: text(fmt.Sprintf("https://example.com/%d", off)), Present: pipeline.HasPageURL}
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
		for i := range arena {
			arena[i] = '#'
		}
		if b := p.Pending(); b.Bytes <= 0 || b.Memory <= 0 {
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
		if r["event_id"] != fmt.Sprint(o) || r["event_name"] != "x" || r["page_url"] != fmt.Sprintf("https://example.com/%d", o) {
			t.Fatalf("row %d: event_id %v, event_name %v, page_url %v", o, r["event_id"], r["event_name"], r["page_url"])
		}
		if (o%3 == 0) != (r["geo_latitude"] != nil) || (o%3 == 0 && r["geo_latitude"] != float64(o%7)) {
			t.Errorf("row %d: latitude %v", o, r["geo_latitude"])
		}
		if (o%2 == 0) != (r["ua_is_bot"] != nil) || (o%2 == 0 && r["ua_is_bot"] != (o%4 == 0)) {
			t.Errorf("row %d: ua_is_bot %v", o, r["ua_is_bot"])
		}
	}
}

// TestRangeRewrittenReproduces: a range flushed again by the same sink
// (new writers, parquet-go's buffer pools warm) holds the same rows.
func TestRangeRewrittenReproduces(t *testing.T) {
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
			t.Errorf("%s differs when written again", k)
		}
	}
}

// spoolFiles lists the files being built in s's spool directory.
func spoolFiles(t *testing.T, s *Sink) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(s.SpoolPath(), "*.part"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// eventsBatch is n kept events from offset off, all in one hour.
func eventsBatch(off int64, n int) *pipeline.Batch {
	b := &pipeline.Batch{Topic: "events", Partition: 1}
	for i := range int64(n) {
		o := off + i
		b.Events = append(b.Events, pipeline.Event{Topic: "events", Partition: 1, Offset: o, KafkaTime: t0 + o,
			EventID: fmt.Sprintf("%08d-%x", o, o*7919), EventName: "page_view", SessionID: fmt.Sprint(o * 31),
			Present: pipeline.HasSessionID | pipeline.HasPageURL,
			PageURL: fmt.Sprintf("https://shop.example/p/%d?q=%x", o%977, o*104729)})
	}
	return b
}

// TestSpoolHoldsFilesOnDisk: past its first row group a file's bytes are
// on disk and out of the memory count; a flush uploads, and leaves nothing
// behind; Discard and Close clean up.
func TestSpoolHoldsFilesOnDisk(t *testing.T) {
	dir := t.TempDir()
	store, _ := objstore.NewDir(dir)
	s, err := New(store, Options{SpoolDir: t.TempDir(), RowGroupBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.OpenPartition("events", 1)
	var off int64
	for range 60 {
		if err := p.Write(eventsBatch(off, 1000)); err != nil {
			t.Fatal(err)
		}
		off += 1000
	}
	b := p.Pending()
	if len(spoolFiles(t, s)) != 1 {
		t.Fatalf("spool files %v, want one", spoolFiles(t, s))
	}
	if b.Memory >= b.Bytes {
		t.Errorf("built on disk, memory %d should be under the file's %d bytes", b.Memory, b.Bytes)
	}
	if b.Memory > 64<<10+openFileOverhead+64<<10 {
		t.Errorf("memory %d: more than an open row group and a writer", b.Memory)
	}
	res, err := p.Flush(context.Background(), 0, off-1)
	if err != nil || len(res.Files) != 1 || res.Files[0].Rows != off {
		t.Fatalf("flush %+v %v", res, err)
	}
	got, err := arrowread.Read(context.Background(), filepath.Join(dir, res.Files[0].Key), -1)
	if err != nil || int64(len(got.Rows)) != off {
		t.Fatalf("read back: %v rows, %v", len(got.Rows), err)
	}
	if left := spoolFiles(t, s); len(left) != 0 {
		t.Errorf("spool files after the flush: %v", left)
	}

	if err := p.Write(eventsBatch(off, 1000)); err != nil {
		t.Fatal(err)
	}
	if len(spoolFiles(t, s)) != 1 {
		t.Fatal("no spool file for the next range")
	}
	p.Discard()
	if left := spoolFiles(t, s); len(left) != 0 {
		t.Errorf("spool files after Discard: %v", left)
	}
	spool := s.SpoolPath()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(spool); !os.IsNotExist(err) {
		t.Errorf("spool directory %s still there after Close (%v)", spool, err)
	}
}

// TestShrinkEndsRowGroups: memory pressure makes more row groups, not
// more files, and every row is in the file.
func TestShrinkEndsRowGroups(t *testing.T) {
	dir := t.TempDir()
	store, _ := objstore.NewDir(dir)
	s, _ := New(store, Options{SpoolDir: t.TempDir(), RowGroupBytes: 1 << 30})
	defer s.Close()
	p, _ := s.OpenPartition("events", 1)
	var off int64
	shrinks := 0
	for range 120 {
		p.Write(eventsBatch(off, 2000))
		off += 2000
		before := p.Pending().Memory
		if err := p.Shrink(); err != nil {
			t.Fatal(err)
		}
		if after := p.Pending().Memory; after < before {
			shrinks++
			if after > openFileOverhead+minShrinkRowGroup {
				t.Errorf("memory %d after Shrink", after)
			}
		}
	}
	if shrinks < 2 {
		t.Fatalf("Shrink freed memory %d times", shrinks)
	}
	res, err := p.Flush(context.Background(), 0, off-1)
	if err != nil || len(res.Files) != 1 {
		t.Fatalf("flush %+v %v", res, err)
	}
	f, err := os.Open(filepath.Join(dir, res.Files[0].Key))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := pq.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(pf.RowGroups()); n < shrinks || pf.NumRows() != off {
		t.Errorf("%d row groups, %d rows; want at least %d row groups, %d rows", n, pf.NumRows(), shrinks, off)
	}
}

// TestSpoolCleansDeadProcessDirs: directories of dead processes (their
// lock free) are removed at start; a live one's (locked) is kept.
func TestSpoolCleansDeadProcessDirs(t *testing.T) {
	parent := t.TempDir()
	dead := filepath.Join(parent, spoolPrefix+"dead")
	os.MkdirAll(dead, 0o755)
	os.WriteFile(filepath.Join(dead, "7.parquet.part"), []byte("PAR1"), 0o600)
	os.WriteFile(filepath.Join(dead, ".lock"), nil, 0o600)
	live, err := openSpool(parent)
	if err != nil {
		t.Fatal(err)
	}
	defer live.close()
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("dead process's spool %s not removed", dead)
	}
	second, err := openSpool(parent)
	if err != nil {
		t.Fatal(err)
	}
	defer second.close()
	if _, err := os.Stat(live.dir); err != nil {
		t.Errorf("a live process's spool was removed: %v", err)
	}
	if second.dir == live.dir {
		t.Error("two processes share a spool directory")
	}
}

// brokenSpool fails every write, as a full disk does.
type brokenSpool struct{ memFile }

func (b *brokenSpool) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// TestBrokenSpoolStopsTheFlush: a file that cannot be finished is not
// retried as if the store were down: Flush says ErrSinkBroken, and keeps
// saying it.
func TestBrokenSpoolStopsTheFlush(t *testing.T) {
	p := onSpool(t, t.TempDir(), func() spoolFile { return &brokenSpool{} })
	for range 2 {
		if _, err := p.Flush(context.Background(), 0, stageRows+9); !errors.Is(err, pipeline.ErrSinkBroken) {
			t.Fatalf("flush: %v, want ErrSinkBroken", err)
		}
	}
	p.Discard()
	if err := p.Write(eventsBatch(0, 10)); err != nil {
		t.Errorf("write after Discard: %v", err)
	}
}

// TestColumnChunkPaths: every column chunk of every file a sink writes —
// its first files and the ones after, staged or streamed, one row group or
// many — names its column in path_in_schema. The sink reuses its writers:
// parquet-go v0.32.0's, when the sink used them, lost their column paths
// on Reset (see TestVerifyCatchesInvalidFiles) and failed here from a
// writer's second file on.
func TestColumnChunkPaths(t *testing.T) {
	bothModes(t, func(t *testing.T, o Options) {
		dir := t.TempDir()
		store, _ := objstore.NewDir(dir)
		o.RowGroupBytes = 16 << 10
		s, _ := New(store, o)
		defer s.Close()
		p, _ := s.OpenPartition("events", 1)
		var paths []string
		off := int64(0)
		for _, n := range []int{3, stageRows + 50, 2000, 10, 900} {
			b := eventsBatch(off, n)
			b.Events[0].Reject("decode", "bad") // a rejected file per flush too
			if err := p.Write(b); err != nil {
				t.Fatal(err)
			}
			res, err := p.Flush(context.Background(), off, off+int64(n)-1)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range res.Files {
				paths = append(paths, filepath.Join(dir, f.Key))
			}
			off += int64(n)
		}
		if len(paths) != 10 {
			t.Fatalf("%d files, want 10", len(paths))
		}
		multi := false
		for _, path := range paths {
			pr, err := pqfile.OpenParquetFile(path, false)
			if err != nil {
				t.Fatal(err)
			}
			cols := EventColumns
			if strings.Contains(path, "/rejected/") {
				cols = RejectedColumns
			}
			multi = multi || pr.NumRowGroups() > 1
			for g := 0; g < pr.NumRowGroups(); g++ {
				rg := pr.MetaData().RowGroup(g)
				if rg.NumColumns() != len(cols) {
					t.Fatalf("%s row group %d: %d chunks", path, g, rg.NumColumns())
				}
				for c := range cols {
					cc, _ := rg.ColumnChunk(c)
					if got := cc.PathInSchema().String(); got != cols[c].Name {
						t.Errorf("%s row group %d column %d: path_in_schema %q, want %q", filepath.Base(path), g, c, got, cols[c].Name)
					}
				}
			}
			pr.Close()
		}
		if !multi {
			t.Error("no file with several row groups")
		}
	})
}

// TestVerifyCatchesInvalidFiles: the footer check that runs before a range
// is recorded done refuses files that break the contract. The first case
// is the upstream defect sluice works around, as a minimal reproducer: a
// parquet-go GenericWriter used again after Reset writes column chunks
// with an empty path_in_schema.
func TestVerifyCatchesInvalidFiles(t *testing.T) {
	rows := []EventRow{{EventID: "a", EventName: "x"}, {EventID: "b", EventName: "y"}}
	write := func(w *pq.GenericWriter[EventRow], buf *bytes.Buffer) *io.SectionReader {
		if _, err := w.Write(rows); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return io.NewSectionReader(bytes.NewReader(buf.Bytes()), 0, int64(buf.Len()))
	}
	var first, second bytes.Buffer
	w := pq.NewGenericWriter[EventRow](&first)
	if err := verify(write(w, &first), EventColumns, 2); err != nil {
		t.Fatalf("a new writer's file: %v", err)
	}
	if err := verify(write(w, &first), EventColumns, 3); !errors.Is(err, errInvalidFile) {
		t.Errorf("row count not checked: %v", err)
	}
	w.Reset(&second)
	reused := write(w, &second)
	if err := verify(reused, EventColumns, 2); err == nil {
		t.Log("parquet-go's Reset keeps column paths now: writers could be pooled again")
	} else if !errors.Is(err, errInvalidFile) || !strings.Contains(err.Error(), `path_in_schema [""]`) {
		t.Errorf("reused writer: %v", err)
	}
	var other bytes.Buffer
	ow := pq.NewGenericWriter[struct {
		EventID string `parquet:"event_id"`
	}](&other)
	ow.Write([]struct {
		EventID string `parquet:"event_id"`
	}{{"a"}})
	ow.Close()
	if err := verify(io.NewSectionReader(bytes.NewReader(other.Bytes()), 0, int64(other.Len())), EventColumns, 1); !errors.Is(err, errInvalidFile) {
		t.Errorf("wrong schema: %v", err)
	}
	if err := verify(io.NewSectionReader(bytes.NewReader(first.Bytes()[:first.Len()-9]), 0, int64(first.Len()-9)), EventColumns, 2); !errors.Is(err, errInvalidFile) {
		t.Errorf("truncated footer: %v", err)
	}
}

// shortSpool reads back one byte less than was written: a file whose
// footer cannot be read.
type shortSpool struct{ memFile }

func (s *shortSpool) Reader() *io.SectionReader {
	return io.NewSectionReader(bytes.NewReader(s.Bytes()), 0, int64(s.Buffer.Len()-1))
}

// TestInvalidFileBreaksTheSink: a file that fails the footer check is never
// uploaded (so never recorded done): Flush says ErrSinkBroken.
func TestInvalidFileBreaksTheSink(t *testing.T) {
	dir := t.TempDir()
	p := onSpool(t, dir, func() spoolFile { return &shortSpool{} })
	_, err := p.Flush(context.Background(), 0, stageRows+9)
	if !errors.Is(err, pipeline.ErrSinkBroken) || !strings.Contains(err.Error(), "invalid parquet file") {
		t.Fatalf("flush: %v, want ErrSinkBroken for an invalid file", err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "events", "*", "*", "*")); len(files) != 0 {
		t.Errorf("uploaded: %v", files)
	}
}

// onSpool returns a partition of a sink into dir holding stageRows+10
// events, its open file moved onto a spool file made by spool.
func onSpool(t *testing.T, dir string, spool func() spoolFile) pipeline.PartitionSink {
	t.Helper()
	store, _ := objstore.NewDir(dir)
	s, _ := New(store, Options{})
	p, _ := s.OpenPartition("events", 1)
	if err := p.Write(eventsBatch(0, stageRows+10)); err != nil {
		t.Fatal(err)
	}
	for _, f := range p.(*Partition).files {
		f.out = spool()
		f.w = s.output(f.key).open(f.out)
	}
	return p
}

// lentBlocks is the number of row-group blocks hugemem has lent.
func lentBlocks() int { return hugemem.Usage(1<<minBlockShift, 1<<maxBlockShift).Lent }

// lentBuffers is the number of writers' buffers hugemem has lent (the
// classes above the row-group blocks').
func lentBuffers() int { return hugemem.Usage(2<<maxBlockShift, hugemem.RegionSize).Lent }

// TestBlocksGivenBack: the blocks of open row groups go back to hugemem
// (which the collector does not reclaim) when a row group is written,
// when the files are flushed, and when the partition is discarded (lost)
// with row groups open; a discarded writer's buffers go back too.
func TestBlocksGivenBack(t *testing.T) {
	base := lentBlocks()
	store, _ := objstore.NewDir(t.TempDir())
	s, _ := New(store, Options{SpoolDir: t.TempDir(), RowGroupBytes: 1 << 30})
	defer s.Close()
	p, _ := s.OpenPartition("events", 3)
	var off int64
	write := func(n int) {
		if err := p.Write(eventsBatch(off, n)); err != nil {
			t.Fatal(err)
		}
		off += int64(n)
	}
	write(30000)
	if lentBlocks() == base {
		t.Fatal("an open row group holds no blocks")
	}
	if _, err := p.Flush(context.Background(), 0, off-1); err != nil {
		t.Fatal(err)
	}
	if n := lentBlocks(); n != base {
		t.Fatalf("%d blocks still lent after the flush", n-base)
	}
	first := off
	write(30000)
	buffers := lentBuffers()
	p.Discard()
	if n := lentBlocks(); n != base {
		t.Fatalf("%d blocks still lent after Discard", n-base)
	}
	if n := lentBuffers(); n != buffers-1 {
		t.Fatalf("writers' buffers lent: %d before Discard, %d after (the discarded writer's should be back)", buffers, n)
	}
	write(500) // the partition goes on after a discard
	if _, err := p.Flush(context.Background(), first, off-1); err != nil {
		t.Fatal(err)
	}
	if n := lentBlocks(); n != base {
		t.Fatalf("%d blocks still lent after the last flush", n-base)
	}
}
