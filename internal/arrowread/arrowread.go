// Package arrowread reads Parquet files with Apache Arrow (pqarrow), the
// implementation independent of the writer: `sluice inspect`, the demo's
// read-back and the tests use it to prove every file readable.
package arrowread

import (
	"context"
	"fmt"
	"os"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"
)

// File is a Parquet file read whole: its Arrow schema and its rows, each a
// map from column name to a Go value (nil for null; strings, int32, int64,
// float64, bool, []byte, arrow.Timestamp).
type File struct {
	Schema *arrow.Schema
	// ParquetSchema is the Parquet-level schema as text (logical types).
	ParquetSchema string
	NumRows       int64
	NumRowGroups  int
	CreatedBy     string
	Rows          []map[string]any
}

// Read opens path and reads up to limit rows (all when limit < 0).
func Read(ctx context.Context, path string, limit int) (*File, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	pr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("open parquet %s: %w", path, err)
	}
	defer pr.Close()
	fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("arrow reader %s: %w", path, err)
	}
	schema, err := fr.Schema()
	if err != nil {
		return nil, fmt.Errorf("arrow schema %s: %w", path, err)
	}
	md := pr.MetaData()
	out := &File{
		Schema:        schema,
		ParquetSchema: md.Schema.String(),
		NumRows:       pr.NumRows(),
		NumRowGroups:  pr.NumRowGroups(),
		CreatedBy:     md.GetCreatedBy(),
	}
	if limit == 0 {
		return out, nil
	}
	cols := make([]int, md.Schema.NumColumns())
	for i := range cols {
		cols[i] = i
	}
	for rg := 0; rg < pr.NumRowGroups(); rg++ {
		tbl, err := fr.ReadRowGroups(ctx, cols, []int{rg})
		if err != nil {
			return nil, fmt.Errorf("read %s row group %d: %w", path, rg, err)
		}
		out.Rows = appendRows(out.Rows, tbl, limit)
		tbl.Release()
		if limit > 0 && len(out.Rows) >= limit {
			break
		}
	}
	return out, nil
}

func appendRows(rows []map[string]any, tbl arrow.Table, limit int) []map[string]any {
	n := int(tbl.NumRows())
	if limit > 0 && n > limit-len(rows) {
		n = limit - len(rows)
	}
	base := len(rows)
	for range n {
		rows = append(rows, make(map[string]any, tbl.NumCols()))
	}
	for c := 0; c < int(tbl.NumCols()); c++ {
		col := tbl.Column(c)
		name := col.Name()
		i := 0
		for _, chunk := range col.Data().Chunks() {
			for j := 0; j < chunk.Len() && i < n; j, i = j+1, i+1 {
				if chunk.IsNull(j) {
					rows[base+i][name] = nil
					continue
				}
				rows[base+i][name] = chunk.GetOneForMarshal(j)
			}
		}
	}
	return rows
}
