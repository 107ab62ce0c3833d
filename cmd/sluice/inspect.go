package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/sluicedata/sluice/internal/arrowread"
	"github.com/sluicedata/sluice/sinks/objstore"
)

func cmdInspect(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	rows := fs.Int("rows", 5, "sample rows to print")
	endpoint := fs.String("s3-endpoint", "", "s3:// URLs: endpoint of an S3-compatible store (default AWS)")
	region := fs.String("s3-region", "", "s3:// URLs: region (default from the AWS chain)")
	pathStyle := fs.Bool("s3-path-style", false, "s3:// URLs: bucket in the path, not the host name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{2, errors.New("usage: sluice inspect [--rows N] [--s3-endpoint E --s3-region R --s3-path-style] FILE|file:///path|s3://bucket/key")}
	}
	path, name := fs.Arg(0), fs.Arg(0)
	if strings.Contains(path, "://") {
		u, err := url.Parse(path)
		if err != nil {
			return &exitError{2, fmt.Errorf("%s: %w", path, err)}
		}
		switch u.Scheme {
		case "file":
			path = u.Path
		case "s3":
			local, err := fetchS3(path, u, objstore.S3Options{Endpoint: *endpoint, Region: *region, PathStyle: *pathStyle})
			if err != nil {
				return err
			}
			defer os.Remove(local)
			path = local
		default:
			return &exitError{2, fmt.Errorf("%s: only local files, file:// and s3:// URLs can be inspected", path)}
		}
	}
	f, err := arrowread.Read(context.Background(), path, *rows)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "file:       %s\n", name)
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

// fetchS3 copies the object of an s3://bucket/key URL (credentials from
// the AWS chain) into a temporary file and returns its path.
func fetchS3(raw string, u *url.URL, o objstore.S3Options) (string, error) {
	key := strings.TrimPrefix(u.Path, "/")
	if u.Host == "" || key == "" || strings.HasSuffix(key, "/") {
		return "", &exitError{2, fmt.Errorf("%s: want s3://bucket/key of one object", raw)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	store, err := objstore.Open(ctx, "s3://"+u.Host, o)
	if err != nil {
		return "", err
	}
	data, err := store.Get(ctx, key)
	if err != nil {
		return "", fmt.Errorf("%s: %w", raw, err)
	}
	tmp, err := os.CreateTemp("", "sluice-inspect-*.parquet")
	if err != nil {
		return "", err
	}
	defer tmp.Close()
	if _, err := tmp.Write(data); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
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
