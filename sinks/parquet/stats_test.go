package parquet

import (
	"encoding/binary"
	"io"
	"math"
	"os"
	"testing"

	pq "github.com/parquet-go/parquet-go"
)

// checkStatistics reads every page of files with parquet-go's reader and
// holds the writer's metadata to the values: per column chunk the null
// count and the exact min and max (or none, for values too long to
// write); per page, in the page index, its first row, null count, whether
// it is all NULL, and bounds that bound its values. Warehouses prune row
// groups and pages by these: a wrong bound loses rows from a query.
func checkStatistics(t *testing.T, files []string) (pages int) {
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
		md := pf.Metadata()
		cis, ois := pf.ColumnIndexes(), pf.OffsetIndexes()
		for g, rg := range pf.RowGroups() {
			ncol := len(rg.ColumnChunks())
			for c, cc := range rg.ColumnChunks() {
				typ := cc.Type()
				col := md.Schema[c+1].Name
				value := func(b []byte) pq.Value {
					switch typ.Kind() {
					case pq.Int32:
						return pq.ValueOf(int32(binary.LittleEndian.Uint32(b)))
					case pq.Int64:
						return pq.ValueOf(int64(binary.LittleEndian.Uint64(b)))
					case pq.Double:
						return pq.ValueOf(math.Float64frombits(binary.LittleEndian.Uint64(b)))
					case pq.Boolean:
						return pq.ValueOf(b[0] == 1)
					}
					return pq.ValueOf(b)
				}
				ci, oi := cis[g*ncol+c], ois[g*ncol+c]
				var lo, hi pq.Value
				var has bool
				var nulls, row int64
				pr := cc.Pages()
				for p := 0; ; p++ {
					page, err := pr.ReadPage()
					if err == io.EOF {
						if p != len(oi.PageLocations) || p != len(ci.NullPages) {
							t.Fatalf("%s rg %d %s: %d pages, page index of %d/%d", name, g, col, p, len(oi.PageLocations), len(ci.NullPages))
						}
						break
					}
					if err != nil {
						t.Fatalf("%s rg %d %s page %d: %v", name, g, col, p, err)
					}
					pages++
					if got := oi.PageLocations[p].FirstRowIndex; got != row {
						t.Errorf("%s rg %d %s page %d: first row %d, want %d", name, g, col, p, got, row)
					}
					if ci.NullCounts[p] != page.NumNulls() {
						t.Errorf("%s rg %d %s page %d: null count %d, page has %d", name, g, col, p, ci.NullCounts[p], page.NumNulls())
					}
					pmin, pmax, ok := page.Bounds()
					if ci.NullPages[p] == ok {
						t.Errorf("%s rg %d %s page %d: null page %v, page has values %v", name, g, col, p, ci.NullPages[p], ok)
					}
					if ok {
						if typ.Compare(value(ci.MinValues[p]), pmin) > 0 || typ.Compare(value(ci.MaxValues[p]), pmax) < 0 {
							t.Errorf("%s rg %d %s page %d: index bounds [%v, %v] do not bound [%v, %v]", name, g, col, p,
								value(ci.MinValues[p]), value(ci.MaxValues[p]), pmin, pmax)
						}
						if !has || typ.Compare(pmin, lo) < 0 {
							lo = pmin.Clone()
						}
						if !has || typ.Compare(pmax, hi) > 0 {
							hi = pmax.Clone()
						}
						has = true
					}
					nulls += page.NumNulls()
					row += page.NumRows()
					pq.Release(page)
				}
				pr.Close()
				s := md.RowGroups[g].Columns[c].MetaData.Statistics
				if s.NullCount != nulls {
					t.Errorf("%s rg %d %s: null count %d, pages hold %d", name, g, col, s.NullCount, nulls)
				}
				// parquet-go's reader gives an empty bound as nil: a chunk
				// whose min is "" shows only its max.
				switch {
				case s.MinValue != nil || s.MaxValue != nil:
					if !has || typ.Compare(value(s.MinValue), lo) != 0 || typ.Compare(value(s.MaxValue), hi) != 0 {
						t.Errorf("%s rg %d %s: statistics [%v, %v], values [%v, %v]", name, g, col, value(s.MinValue), value(s.MaxValue), lo, hi)
					}
				case has && len(hi.ByteArray()) > 0 && len(lo.ByteArray()) <= maxStatBytes && len(hi.ByteArray()) <= maxStatBytes:
					t.Errorf("%s rg %d %s: no min and max for values [%v, %v]", name, g, col, lo, hi)
				}
			}
		}
		f.Close()
	}
	return pages
}
