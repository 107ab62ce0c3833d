package parquet_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/sluicedata/sluice/internal/synth"
	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/sinks/objstore"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/stages/decode"
	"github.com/sluicedata/sluice/stages/useragent"
)

// writeSample writes n synthetic records through decode, useragent and
// the sink into dir, spread over several Kafka hours, and returns how many
// events and rejected rows it wrote.
func writeSample(t *testing.T, dir string, n int) (kept, rejected int) {
	t.Helper()
	store, err := objstore.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	sink, _ := pqsink.New(store, pqsink.Options{})
	p, _ := sink.OpenPartition("events", 0)
	g := synth.New(synth.Options{Seed: 9, DupRate: 0.02, BadRate: 0.02})
	dec := decode.New(nil)
	ua, _ := useragent.New(useragent.NewCache(100))
	b := &pipeline.Batch{}
	for i := range n {
		v, _ := g.Append(nil)
		b.Events = append(b.Events, pipeline.Event{Topic: "events", Offset: int64(i), KafkaTime: 1772366400000 + int64(i)*60_000, Raw: v})
	}
	for _, s := range []pipeline.Stage{dec, ua} {
		if err := s.Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	k, r, _ := b.Counts()
	if err := p.Write(b); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Flush(context.Background(), 0, int64(n-1)); err != nil {
		t.Fatal(err)
	}
	return k, r
}

// TestDuckDBDDL executes `sluice ddl --dialect duckdb` against real output
// in DuckDB and checks rows, types and hive partition columns.
func TestDuckDBDDL(t *testing.T) {
	dir := t.TempDir()
	kept, rejected := writeSample(t, dir, 500)
	ddl, err := pqsink.DDL("duckdb", "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(ddl); err != nil {
		t.Fatalf("DDL failed in DuckDB: %v\n%s", err, ddl)
	}
	count := func(q string) int {
		var n int
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	if n := count("SELECT count(*) FROM events"); n != kept {
		t.Errorf("events: %d rows, wrote %d", n, kept)
	}
	if n := count("SELECT count(*) FROM rejected"); n != rejected {
		t.Errorf("rejected: %d rows, wrote %d", n, rejected)
	}
	if n := count(`SELECT count(DISTINCT "hour") FROM events WHERE "date" = DATE '2026-03-01'`); n < 8 {
		t.Errorf("hive partitions: %d hours on 2026-03-01", n)
	}
	if n := count("SELECT count(*) FROM events WHERE ua_device_class IN ('desktop','mobile','bot')"); n == 0 {
		t.Error("no user-agent columns")
	}
	if n := count(`SELECT count(*) FROM events WHERE hour(kafka_time) <> "hour" OR CAST(kafka_time AS DATE) <> "date"`); n != 0 {
		t.Errorf("%d rows in the wrong date/hour folder", n)
	}

	// The files themselves, without the view: DuckDB must see millisecond
	// UTC timestamps (never nanoseconds) and the required columns as such.
	rows, err := db.Query(fmt.Sprintf("DESCRIBE SELECT * FROM read_parquet('%s/events/*/*/*.parquet')", dir))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	types := map[string]string{}
	for rows.Next() {
		var name, typ string
		var null, key, def, extra sql.NullString
		if err := rows.Scan(&name, &typ, &null, &key, &def, &extra); err != nil {
			t.Fatal(err)
		}
		types[name] = typ
	}
	if got := types["event_time"]; !strings.Contains(got, "TIMESTAMP") || strings.Contains(got, "NS") {
		t.Errorf("event_time reads as %q", got)
	}
	if types["src_offset"] != "BIGINT" || types["src_partition"] != "INTEGER" || types["ua_is_bot"] != "BOOLEAN" || types["geo_latitude"] != "DOUBLE" {
		t.Errorf("types: %v", types)
	}
	var raw []byte
	if err := db.QueryRow("SELECT raw FROM rejected LIMIT 1").Scan(&raw); err != nil || len(raw) == 0 {
		t.Errorf("rejected raw: %q %v", raw, err)
	}
}

func TestDDLDialects(t *testing.T) {
	for _, d := range pqsink.Dialects {
		s, err := pqsink.DDL(d, "s3://analytics/raw")
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		for _, c := range pqsink.EventColumns {
			if !strings.Contains(s, c.Name) {
				t.Errorf("%s DDL lacks column %s", d, c.Name)
			}
		}
		if !strings.Contains(s, "analytics") {
			t.Errorf("%s DDL does not point at the root", d)
		}
	}
	if _, err := pqsink.DDL("oracle", "s3://a/b"); err == nil {
		t.Error("unknown dialect accepted")
	}
	if _, err := pqsink.DDL("duckdb", "ftp://a/b"); err == nil {
		t.Error("bad root accepted")
	}
}
