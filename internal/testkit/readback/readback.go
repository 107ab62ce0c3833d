// Package readback reads sluice's Parquet output with three
// implementations other than the writer's (parquet-go): Apache Arrow (Go),
// DuckDB (C++) and hyparquet (JavaScript, from npm), and holds them equal
// cell by cell. Tests use it to prove every value and every NULL, not only
// row counts: a reader that refuses a file, or disagrees with the others on
// one cell, fails the test.
//
// Cells are canonical text, the same for every reader: "NULL", or a type
// tag and the value — s:<string>, i:<integer>, f:<IEEE-754 bits, hex>,
// b:<true|false>, t:<ms since the epoch>, x:<bytes, hex>.
package readback

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"
	_ "github.com/duckdb/duckdb-go/v2"
)

// Null is the canonical text of a NULL cell.
const Null = "NULL"

// Table is one file as one reader read it.
type Table struct {
	Reader  string
	Columns []string
	// Chunks is every column chunk's path_in_schema ("." joined), per row
	// group.
	Chunks [][]string
	Rows   [][]string
}

// Cell formats a Go value as canonical text (nil is NULL).
func Cell(v any) string {
	switch x := v.(type) {
	case nil:
		return Null
	case string:
		return "s:" + x
	case *string:
		if x == nil {
			return Null
		}
		return "s:" + *x
	case []byte:
		return "x:" + hex.EncodeToString(x)
	case bool:
		return "b:" + strconv.FormatBool(x)
	case *bool:
		if x == nil {
			return Null
		}
		return Cell(*x)
	case int32:
		return "i:" + strconv.FormatInt(int64(x), 10)
	case int64:
		return "i:" + strconv.FormatInt(x, 10)
	case float64:
		return fmt.Sprintf("f:%016x", math.Float64bits(x))
	case *float64:
		if x == nil {
			return Null
		}
		return Cell(*x)
	case time.Time:
		return "t:" + strconv.FormatInt(x.UnixMilli(), 10)
	}
	panic(fmt.Sprintf("readback: no canonical form for %T", v))
}

// Timestamp is the canonical text of a timestamp in ms.
func Timestamp(ms int64) string { return "t:" + strconv.FormatInt(ms, 10) }

// Arrow reads path with Apache Arrow (pqarrow).
func Arrow(path string) (*Table, error) {
	pr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("arrow: open %s: %w", path, err)
	}
	defer pr.Close()
	md := pr.MetaData()
	t := &Table{Reader: "arrow"}
	for i := 0; i < md.Schema.NumColumns(); i++ {
		t.Columns = append(t.Columns, md.Schema.Column(i).Name())
	}
	for rg := 0; rg < pr.NumRowGroups(); rg++ {
		rgm := md.RowGroup(rg)
		var paths []string
		for c := 0; c < rgm.NumColumns(); c++ {
			cc, err := rgm.ColumnChunk(c)
			if err != nil {
				return nil, fmt.Errorf("arrow: %s row group %d column %d: %w", path, rg, c, err)
			}
			paths = append(paths, cc.PathInSchema().String())
		}
		t.Chunks = append(t.Chunks, paths)
	}
	fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("arrow: %s: %w", path, err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		return nil, fmt.Errorf("arrow: read %s: %w", path, err)
	}
	defer tbl.Release()
	t.Rows = make([][]string, tbl.NumRows())
	for i := range t.Rows {
		t.Rows[i] = make([]string, tbl.NumCols())
	}
	for c := 0; c < int(tbl.NumCols()); c++ {
		i := 0
		for _, chunk := range tbl.Column(c).Data().Chunks() {
			for j := 0; j < chunk.Len(); j, i = j+1, i+1 {
				v, err := arrowCell(chunk, j)
				if err != nil {
					return nil, fmt.Errorf("arrow: %s column %s: %w", path, t.Columns[c], err)
				}
				t.Rows[i][c] = v
			}
		}
	}
	return t, nil
}

func arrowCell(a arrow.Array, i int) (string, error) {
	if a.IsNull(i) {
		return Null, nil
	}
	switch x := a.(type) {
	case *array.String:
		return Cell(x.Value(i)), nil
	case *array.Binary:
		return Cell(x.Value(i)), nil
	case *array.Boolean:
		return Cell(x.Value(i)), nil
	case *array.Int32:
		return Cell(x.Value(i)), nil
	case *array.Int64:
		return Cell(x.Value(i)), nil
	case *array.Float64:
		return Cell(x.Value(i)), nil
	case *array.Timestamp:
		unit := x.DataType().(*arrow.TimestampType).Unit
		return Cell(x.Value(i).ToTime(unit)), nil
	}
	return "", fmt.Errorf("unexpected Arrow type %s", a.DataType())
}

var (
	duckOnce sync.Once
	duckDB   *sql.DB
	duckErr  error
)

// DuckDB reads path with DuckDB's Parquet reader.
func DuckDB(path string) (*Table, error) {
	duckOnce.Do(func() { duckDB, duckErr = sql.Open("duckdb", "") })
	if duckErr != nil {
		return nil, duckErr
	}
	lit := "'" + strings.ReplaceAll(path, "'", "''") + "'"
	t := &Table{Reader: "duckdb"}
	meta, err := duckDB.Query(`SELECT row_group_id, path_in_schema FROM parquet_metadata(` + lit + `) ORDER BY row_group_id, column_id`)
	if err != nil {
		return nil, fmt.Errorf("duckdb: metadata %s: %w", path, err)
	}
	for meta.Next() {
		var rg int
		var p string
		if err := meta.Scan(&rg, &p); err != nil {
			meta.Close()
			return nil, fmt.Errorf("duckdb: metadata %s: %w", path, err)
		}
		for len(t.Chunks) <= rg {
			t.Chunks = append(t.Chunks, nil)
		}
		t.Chunks[rg] = append(t.Chunks[rg], strings.ReplaceAll(p, ", ", "."))
	}
	meta.Close()
	rows, err := duckDB.Query(`SELECT * FROM read_parquet(` + lit + `, hive_partitioning = false)`)
	if err != nil {
		return nil, fmt.Errorf("duckdb: read %s: %w", path, err)
	}
	defer rows.Close()
	if t.Columns, err = rows.Columns(); err != nil {
		return nil, err
	}
	vals := make([]any, len(t.Columns))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("duckdb: read %s: %w", path, err)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = Cell(v)
		}
		t.Rows = append(t.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("duckdb: read %s: %w", path, err)
	}
	return t, nil
}

// NodeModules is the directory holding hyparquet and hyparquet-compressors
// (`make tools` installs them into .tools/node/node_modules; the
// SLUICE_NODE_MODULES variable names another). "" when they are missing.
func NodeModules() string {
	dir := os.Getenv("SLUICE_NODE_MODULES")
	if dir == "" {
		_, here, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(here), "..", "..", "..", ".tools", "node", "node_modules")
	}
	if _, err := os.Stat(filepath.Join(dir, "hyparquet", "src", "index.js")); err != nil {
		return ""
	}
	if _, err := exec.LookPath("node"); err != nil {
		return ""
	}
	return dir
}

// Hyparquet reads paths with hyparquet in one node process.
func Hyparquet(paths []string) ([]*Table, error) {
	mods := NodeModules()
	if mods == "" {
		return nil, fmt.Errorf("hyparquet: not installed (make tools) or no node on PATH")
	}
	_, here, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(here), "hyparquet.mjs")
	var out []*Table
	// Bounded argument lists: one node process per 200 files.
	for len(paths) > 0 {
		n := min(len(paths), 200)
		var stdout, stderr bytes.Buffer
		cmd := exec.Command("node", append([]string{script, mods}, paths[:n]...)...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("hyparquet: %v: %s", err, strings.TrimSpace(stderr.String()))
		}
		sc := bufio.NewScanner(&stdout)
		sc.Buffer(nil, 1<<30)
		for sc.Scan() {
			var f struct {
				Path    string     `json:"path"`
				NumRows int64      `json:"num_rows"`
				Columns []string   `json:"columns"`
				Chunks  [][]string `json:"chunks"`
				Rows    [][]string `json:"rows"`
			}
			if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
				return nil, fmt.Errorf("hyparquet: output: %w", err)
			}
			if int64(len(f.Rows)) != f.NumRows {
				return nil, fmt.Errorf("hyparquet: %s: read %d rows, footer says %d", f.Path, len(f.Rows), f.NumRows)
			}
			out = append(out, &Table{Reader: "hyparquet", Columns: f.Columns, Chunks: f.Chunks, Rows: f.Rows})
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("hyparquet: output: %w", err)
		}
		paths = paths[n:]
	}
	return out, nil
}

// requireHyparquet tells whether a missing hyparquet fails (CI sets
// SLUICE_REQUIRE_TOOLS) rather than skips that reader.
func requireHyparquet() bool { return os.Getenv("SLUICE_REQUIRE_TOOLS") != "" }

// Files reads every path with Arrow, DuckDB and hyparquet, checks that each
// reader agrees with the others on columns, row order and every cell, and
// that every column chunk names its column in path_in_schema. It returns
// Arrow's tables, in the order of paths. Any refusal or disagreement fails
// t.
func Files(t testing.TB, paths []string) []*Table {
	t.Helper()
	if len(paths) == 0 {
		return nil
	}
	var hyp []*Table
	if NodeModules() != "" || requireHyparquet() {
		var err error
		if hyp, err = Hyparquet(paths); err != nil {
			t.Fatal(err)
		}
		if len(hyp) != len(paths) {
			t.Fatalf("hyparquet read %d of %d files", len(hyp), len(paths))
		}
	} else {
		t.Log("readback: hyparquet not installed (make tools): reading with Arrow and DuckDB only")
	}
	out := make([]*Table, len(paths))
	for i, p := range paths {
		a, err := Arrow(p)
		if err != nil {
			t.Fatal(err)
		}
		d, err := DuckDB(p)
		if err != nil {
			t.Fatal(err)
		}
		others := []*Table{d}
		if hyp != nil {
			others = append(others, hyp[i])
		}
		for _, o := range append([]*Table{a}, others...) {
			if msg := checkChunks(o); msg != "" {
				t.Fatalf("%s: %s: %s", p, o.Reader, msg)
			}
		}
		for _, o := range others {
			if msg := Diff(a, o); msg != "" {
				t.Fatalf("%s: readers disagree: %s", p, msg)
			}
		}
		out[i] = a
	}
	return out
}

// checkChunks reports a column chunk whose path_in_schema is not its
// column's name (every column of sluice's schemas is a top-level leaf).
func checkChunks(t *Table) string {
	for rg, paths := range t.Chunks {
		if len(paths) != len(t.Columns) {
			return fmt.Sprintf("row group %d has %d column chunks for %d columns", rg, len(paths), len(t.Columns))
		}
		for c, p := range paths {
			if p != t.Columns[c] {
				return fmt.Sprintf("row group %d column %d (%s): path_in_schema %q", rg, c, t.Columns[c], p)
			}
		}
	}
	return ""
}

// Diff describes the first difference between two readings of one file
// ("" when they agree).
func Diff(a, b *Table) string {
	if strings.Join(a.Columns, ",") != strings.Join(b.Columns, ",") {
		return fmt.Sprintf("columns: %s %v, %s %v", a.Reader, a.Columns, b.Reader, b.Columns)
	}
	if len(a.Rows) != len(b.Rows) {
		return fmt.Sprintf("rows: %s %d, %s %d", a.Reader, len(a.Rows), b.Reader, len(b.Rows))
	}
	for i := range a.Rows {
		for c := range a.Columns {
			if a.Rows[i][c] != b.Rows[i][c] {
				return fmt.Sprintf("row %d column %s: %s %.80q, %s %.80q", i, a.Columns[c], a.Reader, a.Rows[i][c], b.Reader, b.Rows[i][c])
			}
		}
	}
	return ""
}

// Column returns the index of name in t's columns (-1 if absent).
func (t *Table) Column(name string) int {
	for i, c := range t.Columns {
		if c == name {
			return i
		}
	}
	return -1
}
