package parquet

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/sluicedata/sluice/internal/testkit/readback"
	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/sinks/objstore"
	"github.com/sluicedata/sluice/stages/decode"
	"github.com/sluicedata/sluice/stages/pseudonymize"
)

// The round-trip property: randomly generated records — every optional
// input field absent, JSON null, "", short, very long or non-ASCII, bad
// records among them — go through decode, pseudonymize and the real sink
// (small row groups, memory shrinks and flushes at random points, writers
// used for many files), and every file read back by Arrow, DuckDB and
// hyparquet holds exactly the value and the NULL the input implies, for
// every column of every row.

// optional input fields of the JSON contract and their output columns.
var rtInputs = []struct{ field, column string }{
	{"app_id", "app_id"}, {"platform", "platform"}, {"session_id", "session_id"},
	{"page_url", "page_url"}, {"referrer", "page_referrer"},
}

// rtValue is a random string value: empty, short, very long or non-ASCII.
func rtValue(r *rand.Rand) string {
	switch r.IntN(8) {
	case 0:
		return ""
	case 1:
		// ~20 KiB that does not compress away: row groups fill.
		b := make([]rune, 5000+r.IntN(10000))
		for i := range b {
			b[i] = []rune("abcdefghijklmnopqrstuvwxyzü東☃0123456789")[r.IntN(38)]
		}
		return string(b)
	case 2:
		return "Zürich 東京 ☃ \U0001F600 \"q\" \\ \t\n"
	case 3:
		return " "
	}
	return fmt.Sprintf("v%d", r.IntN(1000))
}

// rtField is one optional field of a generated record.
type rtField struct {
	state int // 0 absent, 1 JSON null, 2 a value
	value string
}

func rtGen(r *rand.Rand) rtField {
	switch r.IntN(5) {
	case 0:
		return rtField{}
	case 1:
		return rtField{state: 1}
	}
	return rtField{state: 2, value: rtValue(r)}
}

// cell is the expected output cell of f.
func (f rtField) cell() string {
	if f.state != 2 {
		return readback.Null
	}
	return "s:" + f.value
}

// rtRecord is what the test generated for one Kafka record and what it
// expects back.
type rtRecord struct {
	raw       []byte
	kafkaTime int64
	bad       string // "" for a valid event, else what makes it bad
	want      map[string]string
	props     any // decoded JSON of properties (nil: NULL)
	extra     any // decoded JSON of extra (nil: NULL)
}

func genRecord(r *rand.Rand, off, kt int64, key []byte) rtRecord {
	rec := rtRecord{kafkaTime: kt, want: map[string]string{}}
	switch r.IntN(25) {
	case 0:
		rec.bad, rec.raw = "tombstone", nil
		return rec
	case 1:
		rec.bad, rec.raw = "empty", []byte{}
		return rec
	case 2:
		rec.bad, rec.raw = "json", []byte(`{"event_id": "x", "ts": `)
		return rec
	case 3:
		rec.bad, rec.raw = "control", []byte("{\"event_id\":\"a\x00b\",\"event\":\"e\",\"ts\":1}")
		return rec
	case 4:
		rec.bad, rec.raw = "deep", []byte(strings.Repeat("[", 5000)+strings.Repeat("]", 5000))
		return rec
	}
	m := map[string]any{}
	id := fmt.Sprintf("ev-%d-%x", off, r.Uint32())
	if r.IntN(10) == 0 {
		id = "é-" + strings.Repeat("x", 3000) + id
	}
	m["event_id"] = id
	m["event"] = []string{"page_view", "click", "api_request", "ünïcode"}[r.IntN(4)]
	ts := 1772366400000 + r.Int64N(1e9)
	m["ts"] = ts
	rec.want["event_id"] = "s:" + id
	rec.want["event_name"] = "s:" + m["event"].(string)
	rec.want["event_time"] = readback.Timestamp(ts)
	for _, in := range rtInputs {
		f := rtGen(r)
		switch f.state {
		case 1:
			m[in.field] = nil
		case 2:
			m[in.field] = f.value
		}
		rec.want[in.column] = f.cell()
	}
	// user_id: a string (also ""), an integer, null or absent.
	rec.want["user_pseudo_id"], rec.want["pseudo_key_id"] = readback.Null, readback.Null
	var uid string
	hasUID := true
	switch r.IntN(5) {
	case 0:
		hasUID = false
	case 1:
		m["user_id"], hasUID = nil, false
	case 2:
		n := r.Int64N(1 << 62)
		m["user_id"], uid = n, strconv.FormatInt(n, 10)
	default:
		uid = rtValue(r)
		m["user_id"] = uid
	}
	if hasUID {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(uid))
		rec.want["user_pseudo_id"] = "s:" + hex.EncodeToString(mac.Sum(nil))
		rec.want["pseudo_key_id"] = "s:k1"
	}
	switch r.IntN(4) {
	case 0:
	case 1:
		m["properties"] = nil
	case 2:
		m["properties"] = map[string]any{}
		rec.props = map[string]any{}
	default:
		p := map[string]any{"s": rtValue(r), "n": 1.5, "nested": map[string]any{"a": []any{true, nil, "ü"}}, "": ""}
		m["properties"] = p
		rec.props = p
	}
	extra := map[string]any{}
	for i := range r.IntN(3) {
		k := fmt.Sprintf("x%d", i)
		v := any(rtValue(r))
		if i == 1 {
			v = nil
		}
		m[k], extra[k] = v, v
	}
	if len(extra) > 0 {
		rec.extra = extra
	}
	// ip and user_agent are not output columns themselves: their derived
	// columns are set by the test as the enrichment stages would.
	raw, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	rec.raw = raw
	return rec
}

// enrich sets the derived columns of a kept event at random, as geo and
// useragent would, and records what they must read back as. Derived text
// that is empty is NULL.
func enrich(r *rand.Rand, e *pipeline.Event, want map[string]string) {
	str := func(col string, dst *string) {
		*dst = ""
		if r.IntN(3) > 0 {
			*dst = rtValue(r)
		}
		want[col] = readback.Null
		if *dst != "" {
			want[col] = "s:" + *dst
		}
	}
	str("ip_anonymized", &e.IPAnonymized)
	str("geo_country_code", &e.Geo.CountryCode)
	str("geo_country", &e.Geo.Country)
	str("geo_region_code", &e.Geo.RegionCode)
	str("geo_region", &e.Geo.Region)
	str("geo_city", &e.Geo.City)
	str("geo_postal_code", &e.Geo.PostalCode)
	str("geo_timezone", &e.Geo.TimeZone)
	want["geo_latitude"], want["geo_longitude"] = readback.Null, readback.Null
	if r.IntN(3) > 0 {
		e.Geo.HasLocation = true
		e.Geo.Latitude, e.Geo.Longitude = []float64{0, math.Copysign(0, -1), 51.5, -33.86, math.SmallestNonzeroFloat64}[r.IntN(5)], r.Float64()*360-180
		want["geo_latitude"], want["geo_longitude"] = readback.Cell(e.Geo.Latitude), readback.Cell(e.Geo.Longitude)
	}
	str("ua_browser", &e.UA.Browser)
	str("ua_browser_version", &e.UA.BrowserVersion)
	str("ua_os", &e.UA.OS)
	str("ua_os_version", &e.UA.OSVersion)
	str("ua_device_class", &e.UA.DeviceClass)
	want["ua_is_bot"] = readback.Null
	if r.IntN(3) > 0 {
		e.UA.Known, e.UA.IsBot = true, r.IntN(2) == 0
		want["ua_is_bot"] = readback.Cell(e.UA.IsBot)
	}
}

func TestRoundTripEveryValue(t *testing.T) {
	for _, codec := range []string{"zstd", "snappy"} {
		for _, spool := range []string{"disk", "memory"} {
			t.Run(codec+"/"+spool, func(t *testing.T) {
				seed := uint64(len(codec)*10 + len(spool))
				testRoundTrip(t, codec, spool == "disk", seed)
			})
		}
	}
}

func testRoundTrip(t *testing.T, codec string, onDisk bool, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	dir := t.TempDir()
	store, err := objstore.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Compression: codec, RowGroupBytes: 32 << 10}
	if onDisk {
		o.SpoolDir = t.TempDir()
	}
	s, err := New(store, o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.shrinkMin = 16 << 10 // shrinks happen at this test's sizes
	key := []byte("round-trip key")
	pseudo, err := pseudonymize.New(pseudonymize.Options{Keys: map[string][]byte{"k1": key}, Active: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	dec := decode.New(nil)
	p, _ := s.OpenPartition("events", 2)

	const n = 5000
	recs := make([]rtRecord, n)
	reasons := make([]string, n)
	var files []string
	first, off := int64(0), int64(0)
	for off < n {
		size := min(int64(1+r.IntN(300)), n-off)
		b := &pipeline.Batch{Topic: "events", Partition: 2}
		for i := off; i < off+size; i++ {
			// Kafka time over three hours, mostly increasing.
			kt := t0 + i*3*hour/n + r.Int64N(60_000)
			recs[i] = genRecord(r, i, kt, key)
			b.Events = append(b.Events, pipeline.Event{Topic: "events", Partition: 2, Offset: i, KafkaTime: kt, Raw: recs[i].raw})
		}
		if err := dec.Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		for j := range b.Events {
			e := &b.Events[j]
			if e.State == pipeline.Keep {
				enrich(r, e, recs[e.Offset].want)
			}
		}
		if err := pseudo.Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		for j := range b.Events {
			reasons[b.Events[j].Offset] = b.Events[j].RejectReason
		}
		if err := p.Write(b); err != nil {
			t.Fatal(err)
		}
		off += size
		if r.IntN(3) == 0 {
			if err := p.Shrink(); err != nil {
				t.Fatal(err)
			}
		}
		if r.IntN(15) == 0 || off == n {
			res, err := p.Flush(context.Background(), first, off-1)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range res.Files {
				files = append(files, filepath.Join(dir, f.Key))
			}
			first = off
		}
	}

	tables := readback.Files(t, files)
	seen := make([]bool, n)
	var events, rejected, rowGroups int
	for i, tbl := range tables {
		rowGroups += len(tbl.Chunks)
		rejectedFile := strings.Contains(files[i], "/rejected/")
		for _, row := range tbl.Rows {
			get := func(col string) string {
				c := tbl.Column(col)
				if c < 0 {
					t.Fatalf("%s: no column %s", files[i], col)
				}
				return row[c]
			}
			o, err := strconv.ParseInt(strings.TrimPrefix(get("src_offset"), "i:"), 10, 64)
			if err != nil || o < 0 || o >= n || seen[o] {
				t.Fatalf("%s: src_offset %s unexpected or repeated", files[i], get("src_offset"))
			}
			seen[o] = true
			rec := recs[o]
			if got := get("kafka_time"); got != readback.Timestamp(rec.kafkaTime) {
				t.Errorf("offset %d: kafka_time %s", o, got)
			}
			if get("src_topic") != "s:events" || get("src_partition") != "i:2" {
				t.Errorf("offset %d: lineage %s %s", o, get("src_topic"), get("src_partition"))
			}
			if rejectedFile {
				rejected++
				if rec.bad == "" {
					t.Errorf("offset %d: valid record rejected: %s", o, get("error"))
					continue
				}
				if got := get("raw"); got != "x:"+hex.EncodeToString(rec.raw) {
					t.Errorf("offset %d (%s): raw %.80s", o, rec.bad, got)
				}
				if got := get("error"); got != "s:"+reasons[o] || get("stage") != "s:decode" {
					t.Errorf("offset %d: error %.80q stage %s, decode said %q", o, got, get("stage"), reasons[o])
				}
				continue
			}
			events++
			if rec.bad != "" {
				t.Errorf("offset %d: bad record (%s) in events", o, rec.bad)
				continue
			}
			for col, want := range rec.want {
				if got := get(col); got != want {
					t.Errorf("offset %d column %s: got %.100q want %.100q", o, col, got, want)
				}
			}
			for _, js := range []struct {
				col  string
				want any
			}{{"properties", rec.props}, {"extra", rec.extra}} {
				got := get(js.col)
				if js.want == nil {
					if got != readback.Null {
						t.Errorf("offset %d column %s: got %.100q want NULL", o, js.col, got)
					}
					continue
				}
				var v any
				if !strings.HasPrefix(got, "s:") || json.Unmarshal([]byte(got[2:]), &v) != nil || !reflect.DeepEqual(v, js.want) {
					t.Errorf("offset %d column %s: got %.100q want %v", o, js.col, got, js.want)
				}
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	for o, ok := range seen {
		if !ok {
			t.Fatalf("offset %d (%s) not in any file", o, recs[o].bad)
		}
	}
	t.Logf("%d files, %d row groups, %d event rows, %d rejected rows", len(files), rowGroups, events, rejected)
	// The values read back above include dictionary-encoded pages (the
	// switch to PLAIN is TestDictionaryFallback's).
	if pages := checkStatistics(t, files); pages == 0 {
		t.Error("no page checked")
	}
	if dict, _ := dictionaryPages(t, files); dict == 0 {
		t.Errorf("no dictionary-encoded page")
	}
	if rowGroups <= len(files) {
		t.Errorf("no file had more than one row group: the row-group boundary was not exercised")
	}
}

// dictionaryPages counts, over files, the dictionary-encoded data pages
// and the column chunks with both dictionary and PLAIN data pages.
func dictionaryPages(t *testing.T, files []string) (dictPages, mixedChunks int) {
	t.Helper()
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		pf, err := pq.OpenFile(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		for _, rg := range pf.Metadata().RowGroups {
			for _, cc := range rg.Columns {
				var dict, plain int
				for _, es := range cc.MetaData.EncodingStats {
					if es.PageType != format.DataPage && es.PageType != format.DataPageV2 {
						continue
					}
					switch es.Encoding {
					case format.RLEDictionary:
						dict += int(es.Count)
					case format.Plain:
						plain += int(es.Count)
					}
				}
				dictPages += dict
				if dict > 0 && plain > 0 {
					mixedChunks++
				}
			}
		}
		f.Close()
	}
	return dictPages, mixedChunks
}

// TestDictionaryFallback: dictionary-encoded columns whose distinct text
// outgrows dictionaryMaxBytes within a row group go on in PLAIN; values
// on both sides of the switch, in two files of one pooled writer, read
// back exactly (Arrow, DuckDB, hyparquet).
func TestDictionaryFallback(t *testing.T) {
	dir := t.TempDir()
	store, _ := objstore.NewDir(dir)
	s, err := New(store, Options{SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, _ := s.OpenPartition("events", 1)
	const n = 6000
	city := func(o int64) string {
		if o%7 == 0 {
			return "" // NULL
		}
		if o < n/4 {
			return fmt.Sprintf("Town %d", o%50) // few: dictionary
		}
		return fmt.Sprintf("Unique town %08d of the fallback test", o) // ~40 bytes each: past 32 KiB
	}
	var files []string
	for part := range int64(2) {
		for off := part * n; off < (part+1)*n; off += 500 {
			b := eventsBatch(off, 500)
			for i := range b.Events {
				e := &b.Events[i]
				e.Geo.City = city(e.Offset - part*n)
				e.Geo.CountryCode = []string{"DE", "FR", "US"}[e.Offset%3]
			}
			if err := p.Write(b); err != nil {
				t.Fatal(err)
			}
		}
		res, err := p.Flush(context.Background(), part*n, (part+1)*n-1)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range res.Files {
			files = append(files, filepath.Join(dir, f.Key))
		}
	}
	checkStatistics(t, files)
	dict, mixed := dictionaryPages(t, files)
	if dict == 0 || mixed == 0 {
		t.Fatalf("dictionary pages %d, chunks falling back to PLAIN %d: both must be exercised", dict, mixed)
	}
	rows := 0
	for i, tbl := range readback.Files(t, files) {
		for _, row := range tbl.Rows {
			o, _ := strconv.ParseInt(strings.TrimPrefix(row[tbl.Column("src_offset")], "i:"), 10, 64)
			want := readback.Null
			if c := city(o - int64(i)*n); c != "" {
				want = "s:" + c
			}
			if got := row[tbl.Column("geo_city")]; got != want {
				t.Fatalf("%s offset %d: geo_city %q, want %q", files[i], o, got, want)
			}
			if got, want := row[tbl.Column("geo_country_code")], "s:"+[]string{"DE", "FR", "US"}[o%3]; got != want {
				t.Fatalf("offset %d: geo_country_code %q, want %q", o, got, want)
			}
			rows++
		}
	}
	if rows != 2*n {
		t.Fatalf("%d rows read back, %d written", rows, 2*n)
	}
}
