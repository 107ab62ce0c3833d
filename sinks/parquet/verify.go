package parquet

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/apache/arrow/go/v15/parquet"
	pqfile "github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/schema"
)

// errInvalidFile marks a finished file whose footer does not hold what the
// contract says: a writer defect, never a reason to record its range done.
var errInvalidFile = errors.New("invalid parquet file")

// verify reads the footer of a finished file back from the spool with
// Apache Arrow's Parquet reader (an implementation independent of the
// writer) and checks it against the contract: the schema of the output
// (names, order, physical and logical types, REQUIRED or OPTIONAL), rows
// equal to the rows written, and in every row group one column chunk per
// column, naming it in path_in_schema, of the column's type, with one value
// per row and null counts that fit. Any failure wraps errInvalidFile.
func verify(r *io.SectionReader, cols []Column, rows int64) error {
	if err := checkFooter(r, cols, rows); err != nil {
		return fmt.Errorf("%w: %w", errInvalidFile, err)
	}
	return nil
}

func checkFooter(r *io.SectionReader, cols []Column, rows int64) error {
	pr, err := pqfile.NewParquetReader(r)
	if err != nil {
		return fmt.Errorf("footer: %w", err)
	}
	defer pr.Close()
	md := pr.MetaData()
	if md.NumRows != rows {
		return fmt.Errorf("footer has %d rows, %d were written", md.NumRows, rows)
	}
	sc := md.Schema
	if sc.NumColumns() != len(cols) {
		return fmt.Errorf("schema has %d columns, want %d", sc.NumColumns(), len(cols))
	}
	var errs []error
	for i, want := range cols {
		c := sc.Column(i)
		if msg := checkColumn(c, want); msg != "" {
			errs = append(errs, fmt.Errorf("schema column %d (%s): %s", i, want.Name, msg))
		}
	}
	if n := len(md.ColumnOrders); n != 0 && n != len(cols) {
		errs = append(errs, fmt.Errorf("%d column orders for %d columns", n, len(cols)))
	}
	for _, kv := range md.FileMetaData.KeyValueMetadata {
		if kv.Key == "" {
			errs = append(errs, errors.New("key-value metadata with an empty key"))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	var sum int64
	for g := 0; g < pr.NumRowGroups(); g++ {
		rg := md.RowGroup(g)
		sum += rg.NumRows()
		if rg.NumColumns() != len(cols) {
			return fmt.Errorf("row group %d: %d column chunks for %d columns", g, rg.NumColumns(), len(cols))
		}
		for i, want := range cols {
			cc, err := rg.ColumnChunk(i)
			if err != nil {
				return fmt.Errorf("row group %d column %d: %w", g, i, err)
			}
			if p := cc.PathInSchema(); !slices.Equal(p, parquet.ColumnPath{want.Name}) {
				errs = append(errs, fmt.Errorf("row group %d column %d (%s): path_in_schema %q", g, i, want.Name, []string(p)))
			}
			if cc.Type() != sc.Column(i).PhysicalType() {
				errs = append(errs, fmt.Errorf("row group %d column %s: chunk type %s, schema %s", g, want.Name, cc.Type(), sc.Column(i).PhysicalType()))
			}
			if cc.NumValues() != rg.NumRows() {
				errs = append(errs, fmt.Errorf("row group %d column %s: %d values for %d rows", g, want.Name, cc.NumValues(), rg.NumRows()))
			}
			if set, _ := cc.StatsSet(); set {
				st, err := cc.Statistics()
				if err != nil {
					errs = append(errs, fmt.Errorf("row group %d column %s: statistics: %w", g, want.Name, err))
				} else if st.HasNullCount() && (st.NullCount() < 0 || st.NullCount() > rg.NumRows() || (want.Required && st.NullCount() != 0)) {
					errs = append(errs, fmt.Errorf("row group %d column %s: null count %d of %d rows", g, want.Name, st.NullCount(), rg.NumRows()))
				}
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
	}
	if sum != rows {
		return fmt.Errorf("row groups hold %d rows, %d were written", sum, rows)
	}
	return nil
}

// checkColumn compares one schema leaf with its contract column.
func checkColumn(c *schema.Column, want Column) string {
	if c.Name() != want.Name || c.Path() != want.Name {
		return fmt.Sprintf("named %q at %q", c.Name(), c.Path())
	}
	rep := c.SchemaNode().RepetitionType()
	if want.Required && rep != parquet.Repetitions.Required || !want.Required && rep != parquet.Repetitions.Optional {
		return fmt.Sprintf("repetition %s, required %v", rep, want.Required)
	}
	var phys parquet.Type
	var logical schema.LogicalType = schema.NoLogicalType{}
	switch want.Type {
	case TypeString:
		phys, logical = parquet.Types.ByteArray, schema.StringLogicalType{}
	case TypeBinary:
		phys = parquet.Types.ByteArray
	case TypeTimestampMs:
		phys, logical = parquet.Types.Int64, schema.NewTimestampLogicalType(true, schema.TimeUnitMillis)
	case TypeDouble:
		phys = parquet.Types.Double
	case TypeBoolean:
		phys = parquet.Types.Boolean
	case TypeInt32:
		phys, logical = parquet.Types.Int32, schema.NewIntLogicalType(32, true)
	case TypeInt64:
		phys, logical = parquet.Types.Int64, schema.NewIntLogicalType(64, true)
	default:
		return "unknown contract type " + want.Type
	}
	if c.PhysicalType() != phys {
		return fmt.Sprintf("physical type %s, want %s", c.PhysicalType(), phys)
	}
	if !c.LogicalType().Equals(logical) {
		return fmt.Sprintf("logical type %s, want %s", c.LogicalType(), logical)
	}
	return ""
}
