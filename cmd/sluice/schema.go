package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	pqsink "github.com/sluicedata/sluice/sinks/parquet"
)

// cmdSchema prints the data dictionary: every output column, its type,
// where it comes from and its privacy class.
func cmdSchema(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("schema", flag.ContinueOnError)
	format := fs.String("format", "markdown", "markdown or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch *format {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"events": pqsink.EventColumns, "rejected": pqsink.RejectedColumns, "null_rule": pqsink.NullRule})
	case "markdown":
		for _, t := range []struct {
			name string
			cols []pqsink.Column
		}{{"events", pqsink.EventColumns}, {"rejected", pqsink.RejectedColumns}} {
			fmt.Fprintf(out, "## %s\n\n| column | type | required | source | privacy | NULL when |\n|---|---|---|---|---|---|\n", t.name)
			for _, c := range t.cols {
				req := "no"
				if c.Required {
					req = "yes"
				}
				fmt.Fprintf(out, "| `%s` | %s | %s | %s | %s | %s |\n", c.Name, c.Type, req, c.Source, c.Privacy, c.Null)
			}
			fmt.Fprintln(out)
		}
		fmt.Fprintln(out, pqsink.NullRule)
		fmt.Fprintln(out)
		fmt.Fprintln(out, "The raw user_id and the raw ip are never written: only user_pseudo_id (keyed HMAC) and ip_anonymized.")
		fmt.Fprintln(out, "Rejected rows keep the raw record value (raw) of records that could not be decoded: set sink.rejected: off to keep none.")
		return nil
	}
	return &exitError{2, fmt.Errorf("--format %q: want markdown or json", *format)}
}

// cmdDDL prints CREATE statements for a warehouse over the output layout.
func cmdDDL(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("ddl", flag.ContinueOnError)
	dialect := fs.String("dialect", "", "warehouse: "+strings.Join(pqsink.Dialects, ", "))
	root := fs.String("url", "s3://YOUR-BUCKET/sluice", "the sink URL the files are under")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !slices.Contains(pqsink.Dialects, *dialect) {
		return &exitError{2, errors.New("--dialect: want one of " + strings.Join(pqsink.Dialects, ", "))}
	}
	s, err := pqsink.DDL(*dialect, *root)
	if err != nil {
		return &exitError{2, err}
	}
	_, err = io.WriteString(out, s)
	return err
}
