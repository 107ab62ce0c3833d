package parquet

import (
	"strings"
	"testing"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// TestColumnsMatchWriterSchema holds the data dictionary equal to what the
// writer produces: same names, order, types and nullability.
func TestColumnsMatchWriterSchema(t *testing.T) {
	check := func(name string, schema *pq.Schema, cols []Column) {
		fields := schema.Fields()
		if len(fields) != len(cols) {
			t.Fatalf("%s: %d Parquet columns, %d in the dictionary", name, len(fields), len(cols))
		}
		for i, f := range fields {
			c := cols[i]
			if f.Name() != c.Name {
				t.Errorf("%s column %d: Parquet %s, dictionary %s", name, i, f.Name(), c.Name)
			}
			if f.Optional() == c.Required {
				t.Errorf("%s.%s: optional=%v, dictionary required=%v", name, c.Name, f.Optional(), c.Required)
			}
			var got string
			var lv format.LogicalTypeValue
			if lt := f.Type().LogicalType(); lt != nil {
				lv = lt.Value
			}
			switch v := lv.(type) {
			case *format.TimestampType:
				if s := v.String(); !v.IsAdjustedToUTC || !strings.Contains(s, "MILLIS") {
					t.Errorf("%s.%s: timestamp must be MILLIS, UTC-adjusted: %s", name, c.Name, s)
				}
				got = TypeTimestampMs
			case *format.StringType:
				got = TypeString
			default:
				switch f.Type().Kind() {
				case pq.Double:
					got = TypeDouble
				case pq.Boolean:
					got = TypeBoolean
				case pq.Int32:
					got = TypeInt32
				case pq.Int64:
					got = TypeInt64
				case pq.ByteArray:
					got = TypeBinary
				}
			}
			if got != c.Type {
				t.Errorf("%s.%s: Parquet type %s (%v), dictionary %s", name, c.Name, got, f.Type(), c.Type)
			}
			if c.Source == "" || c.Privacy == "" {
				t.Errorf("%s.%s: source and privacy class are required", name, c.Name)
			}
		}
	}
	check("events", pq.SchemaOf(EventRow{}), EventColumns)
	check("rejected", pq.SchemaOf(RejectedRow{}), RejectedColumns)
}
