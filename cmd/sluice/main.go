// Command sluice is the enrichment pipeline: Kafka in, Parquet out.
//
//	sluice run      --config sluice.yaml   until SIGTERM: drain, flush, commit, exit 0
//	sluice collect  --config sluice.yaml   Snowplow-protocol HTTP collector → Kafka (CollectorPayload records)
//	sluice demo                            embedded broker + generator + pipeline → ./sluice-demo
//	sluice gen      --brokers … --topic …  produce synthetic events to a cluster
//	sluice status   --config sluice.yaml   per recent hour: complete, or which partitions hold it back
//	sluice inspect  FILE|URL               schema, row count, sample rows (read with Arrow)
//	sluice validate --config sluice.yaml   every config problem, each naming its key
//	sluice schema   [--format markdown|json] the data dictionary
//	sluice ddl      --dialect D            warehouse DDL over the output layout
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

// version and commit are set at build time with -ldflags "-X
// main.version=… -X main.commit=…" (make build, the Dockerfile); a plain go
// build says dev and takes the commit from the build info when it has one.
var (
	version = "dev"
	commit  = ""
)

// versionLine is what `sluice version` prints: version, commit, Go version
// and platform.
func versionLine() string {
	c := commit
	if c == "" {
		c = "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					c = s.Value[:12]
				}
			}
		}
	}
	return fmt.Sprintf("sluice %s (commit %s, %s, %s/%s)", version, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// exitError carries a process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func usage(w io.Writer) {
	fmt.Fprint(w, `sluice: stream-processing enrichment pipeline, Kafka to partitioned Parquet.

Usage:
  sluice run      --config sluice.yaml    consume until SIGTERM/SIGINT, then drain, flush, commit, exit 0
  sluice collect  --config sluice.yaml    Snowplow-protocol HTTP collector: tracker requests → Kafka (collect: section)
  sluice demo     [--events N] [--out DIR] embedded broker + generated events + pipeline → ./sluice-demo
  sluice gen      --brokers B --topic T   produce synthetic events (--events, --rate, --dup-rate, --bad-rate)
  sluice status   --config sluice.yaml    per recent hour: complete (its manifests), or which partitions hold it back
  sluice inspect  FILE|URL                print a Parquet file's schema, row count and first rows (file://, s3://)
  sluice validate --config sluice.yaml    check a config (and its GeoIP file and keys); print every problem
  sluice schema   [--format markdown|json] the data dictionary: columns, types, sources, privacy classes
  sluice ddl      --dialect D [--url U]   CREATE statements for snowflake, bigquery, athena, clickhouse, duckdb
  sluice version                          version, commit, Go version

Run "sluice COMMAND -h" for a command's flags.
`)
}

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "run":
		err = cmdRun(args)
	case "collect":
		err = cmdCollect(args)
	case "demo":
		err = cmdDemo(args)
	case "gen":
		err = cmdGen(args)
	case "inspect":
		err = cmdInspect(args, os.Stdout)
	case "status":
		err = cmdStatus(args, os.Stdout)
	case "validate":
		err = cmdValidate(args, os.Stdout)
	case "schema":
		err = cmdSchema(args, os.Stdout)
	case "ddl":
		err = cmdDDL(args, os.Stdout)
	case "version", "--version":
		fmt.Println(versionLine())
	case "help", "-h", "--help":
		usage(os.Stdout)
	default:
		fmt.Fprintf(os.Stderr, "sluice: unknown command %q\n\n", cmd)
		usage(os.Stderr)
		os.Exit(2)
	}
	if err != nil {
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "sluice "+cmd+":", err)
		} else {
			code = 0
		}
		os.Exit(code)
	}
}
