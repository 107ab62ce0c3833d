package parquet

import (
	"context"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/internal/testkit/readback"
	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/sinks/objstore"
)

// TestEdgeValues: values at the edges of the encodings and statistics —
// NaN, infinities and both zeros in the doubles, "" in dictionary and
// PLAIN columns, a value of 300 KiB (past a page, past the statistics'
// limit), a column NULL in every row, one value repeated across pages —
// read back exactly by Arrow, DuckDB and hyparquet, with statistics that
// hold (checkStatistics).
func TestEdgeValues(t *testing.T) {
	dir := t.TempDir()
	store, _ := objstore.NewDir(dir)
	s, err := New(store, Options{RowGroupBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.OpenPartition("events", 3)
	doubles := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), -1e308, 5e-324, 47.5}
	big := strings.Repeat("€x", 100<<10) // 300 KiB
	const n = 20000
	want := make([]map[string]string, n)
	b := &pipeline.Batch{Topic: "events", Partition: 3}
	for o := range int64(n) {
		e := pipeline.Event{Topic: "events", Partition: 3, Offset: o, KafkaTime: t0 + o, EventID: strconv.FormatInt(o, 10),
			EventName: "same", Present: pipeline.HasAppID | pipeline.HasProperties}
		w := map[string]string{"event_name": "s:same", "geo_latitude": readback.Null, "app_id": "s:", "properties": "s:",
			"contexts": readback.Null, "ua_is_bot": readback.Null}
		switch o % 3 {
		case 0:
			e.AppID = "app" // "" otherwise: a value of the dictionary
			w["app_id"] = "s:app"
		case 1:
			e.Geo.HasLocation = true
			e.Geo.Latitude = doubles[o%int64(len(doubles))]
			w["geo_latitude"] = readback.Cell(e.Geo.Latitude)
			e.UA.Known, e.UA.IsBot = true, o%2 == 0
			w["ua_is_bot"] = readback.Cell(e.UA.IsBot)
		}
		if o%5000 == 7 {
			e.Properties = big
			w["properties"] = "s:" + big
		}
		want[o] = w
		b.Events = append(b.Events, e)
	}
	if err := p.Write(b); err != nil {
		t.Fatal(err)
	}
	res, err := p.Flush(context.Background(), 0, n-1)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range res.Files {
		files = append(files, filepath.Join(dir, f.Key))
	}
	checkStatistics(t, files)
	rows := 0
	for _, tbl := range readback.Files(t, files) {
		for _, row := range tbl.Rows {
			o, _ := strconv.ParseInt(strings.TrimPrefix(row[tbl.Column("src_offset")], "i:"), 10, 64)
			for col, w := range want[o] {
				if got := row[tbl.Column(col)]; got != w {
					t.Fatalf("offset %d %s: got %.60q want %.60q", o, col, got, w)
				}
			}
			rows++
		}
		if len(tbl.Chunks) < 2 {
			t.Errorf("%d row groups: the test wants several", len(tbl.Chunks))
		}
	}
	if rows != n {
		t.Fatalf("%d rows read back, %d written", rows, n)
	}
}
