package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/sluicedata/sluice/internal/arrowread"
)

func cmdInspect(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	rows := fs.Int("rows", 5, "sample rows to print")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{2, errors.New("usage: sluice inspect [--rows N] FILE|file:///path")}
	}
	path := fs.Arg(0)
	if strings.Contains(path, "://") {
		u, err := url.Parse(path)
		if err != nil || u.Scheme != "file" {
			return &exitError{2, fmt.Errorf("%s: only local files and file:// URLs can be inspected", path)}
		}
		path = u.Path
	}
	f, err := arrowread.Read(context.Background(), path, *rows)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "file:       %s\n", path)
	fmt.Fprintf(out, "created by: %s\n", f.CreatedBy)
	fmt.Fprintf(out, "rows:       %d in %d row group(s)\n\n", f.NumRows, f.NumRowGroups)
	fmt.Fprintln(out, "schema (Arrow):")
	for _, fld := range f.Schema.Fields() {
		null := "required"
		if fld.Nullable {
			null = "optional"
		}
		fmt.Fprintf(out, "  %-20s %-28s %s\n", fld.Name, fld.Type, null)
	}
	for i, r := range f.Rows {
		fmt.Fprintf(out, "\nrow %d:\n", i)
		for _, fld := range f.Schema.Fields() {
			fmt.Fprintf(out, "  %-20s %s\n", fld.Name, formatValue(r[fld.Name], fld.Type))
		}
	}
	return nil
}

func formatValue(v any, t arrow.DataType) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case arrow.Timestamp:
		unit := arrow.Millisecond
		if tt, ok := t.(*arrow.TimestampType); ok {
			unit = tt.Unit
		}
		return x.ToTime(unit).UTC().Format(time.RFC3339Nano)
	case []byte:
		return fmt.Sprintf("%q", x)
	case string:
		return fmt.Sprintf("%q", x)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return fmt.Sprint(keys)
	}
	return fmt.Sprint(v)
}
