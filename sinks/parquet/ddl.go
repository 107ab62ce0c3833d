package parquet

import (
	"fmt"
	"net/url"
	"strings"
)

// Dialects are the warehouses DDL can be generated for.
var Dialects = []string{"snowflake", "bigquery", "athena", "clickhouse", "duckdb"}

// DDL returns CREATE statements for the events and rejected outputs under
// root (the sink URL: s3://bucket/prefix or file:///path) in dialect, built
// from EventColumns and RejectedColumns. Each warehouse gets what it uses to
// read files in place: a Snowflake stage, external tables and Snowpipe; a
// BigQuery external table with hive partitioning; an Athena table with
// partition projection; ClickHouse s3() tables and an S3Queue; DuckDB views
// over read_parquet.
func DDL(dialect, root string) (string, error) {
	u, err := url.Parse(root)
	if err != nil || (u.Scheme != "s3" && u.Scheme != "file") {
		return "", fmt.Errorf("root %q: want s3://bucket/prefix or file:///path", root)
	}
	base := strings.TrimSuffix(root, "/")
	var b strings.Builder
	switch dialect {
	case "duckdb":
		if u.Scheme == "file" {
			base = strings.TrimSuffix(u.Path, "/")
		}
		b.WriteString("-- DuckDB: views over the Parquet files (for s3:// roots: INSTALL httpfs; LOAD httpfs; and S3 credentials).\n")
		b.WriteString("-- The *.parquet globs skip each hour's _manifest.json.\n")
		duckView(&b, "events", base+"/events/*/*/*.parquet", EventColumns, true)
		b.WriteString("\n")
		duckView(&b, "rejected", base+"/rejected/*/*/*.parquet", RejectedColumns, true)
	case "snowflake":
		fmt.Fprintf(&b, "-- Snowflake: an external stage over the sink root (add STORAGE_INTEGRATION for S3 access).\n")
		fmt.Fprintf(&b, "CREATE STAGE IF NOT EXISTS sluice_stage\n  URL = '%s/'\n  FILE_FORMAT = (TYPE = PARQUET);\n", base)
		b.WriteString("-- PATTERN keeps to the .parquet files: each hour's _manifest.json (and _sluice/) is not data.\n\n")
		for _, t := range []struct {
			name string
			cols []Column
		}{{"events", EventColumns}, {"rejected", RejectedColumns}} {
			fmt.Fprintf(&b, "-- Query in place: new files appear with AUTO_REFRESH (S3 event notifications) or ALTER EXTERNAL TABLE %s_ext REFRESH.\n", t.name)
			fmt.Fprintf(&b, "CREATE EXTERNAL TABLE IF NOT EXISTS %s_ext (\n", t.name)
			for _, c := range t.cols {
				fmt.Fprintf(&b, "  %s %s AS (value:%s::%s),\n", c.Name, snowflakeType(c.Type), c.Name, snowflakeType(c.Type))
			}
			b.WriteString("  date DATE AS TO_DATE(SPLIT_PART(SPLIT_PART(METADATA$FILENAME, 'date=', 2), '/', 1)),\n")
			b.WriteString("  hour NUMBER AS TO_NUMBER(SPLIT_PART(SPLIT_PART(METADATA$FILENAME, 'hour=', 2), '/', 1))\n")
			fmt.Fprintf(&b, ")\nPARTITION BY (date, hour)\nLOCATION = @sluice_stage/%s/\nPATTERN = '.*[.]parquet'\nFILE_FORMAT = (TYPE = PARQUET)\nAUTO_REFRESH = TRUE;\n\n", t.name)
			fmt.Fprintf(&b, "-- Or load: a table and a Snowpipe that copies each new file once.\n")
			fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (\n", t.name)
			for i, c := range t.cols {
				fmt.Fprintf(&b, "  %s %s%s%s\n", c.Name, snowflakeType(c.Type), notNull(c.Required), comma(i, len(t.cols)))
			}
			fmt.Fprintf(&b, ");\nCREATE PIPE IF NOT EXISTS %s_pipe AUTO_INGEST = TRUE AS\n  COPY INTO %s FROM @sluice_stage/%s/\n  PATTERN = '.*[.]parquet'\n  FILE_FORMAT = (TYPE = PARQUET USE_LOGICAL_TYPE = TRUE)\n  MATCH_BY_COLUMN_NAME = CASE_SENSITIVE;\n\n", t.name, t.name, t.name)
		}
	case "bigquery":
		b.WriteString("-- BigQuery: external tables with hive partitioning (s3:// URIs need a BigQuery Omni connection:\n-- add WITH CONNECTION `project.region.connection`; or copy the files to GCS). New files are read at query time.\n-- The *.parquet wildcard skips each hour's _manifest.json.\n")
		for _, t := range []struct {
			name string
			cols []Column
		}{{"events", EventColumns}, {"rejected", RejectedColumns}} {
			fmt.Fprintf(&b, "CREATE EXTERNAL TABLE IF NOT EXISTS `sluice.%s` (\n", t.name)
			for i, c := range t.cols {
				fmt.Fprintf(&b, "  %s %s%s%s\n", c.Name, bigqueryType(c.Type), notNull(c.Required), comma(i, len(t.cols)))
			}
			fmt.Fprintf(&b, ")\nWITH PARTITION COLUMNS (date DATE, hour INT64)\nOPTIONS (\n  format = 'PARQUET',\n  uris = ['%s/%s/*.parquet'],\n  hive_partition_uri_prefix = '%s/%s',\n  require_hive_partition_filter = false\n);\n\n", base, t.name, base, t.name)
		}
	case "athena":
		b.WriteString("-- Athena (Glue): partition projection finds new date/hour folders without MSCK REPAIR or crawlers.\n")
		b.WriteString("-- Athena ignores files whose names begin with _ or . (each hour's _manifest.json).\n")
		for _, t := range []struct {
			name string
			cols []Column
		}{{"events", EventColumns}, {"rejected", RejectedColumns}} {
			fmt.Fprintf(&b, "CREATE EXTERNAL TABLE IF NOT EXISTS sluice_%s (\n", t.name)
			for i, c := range t.cols {
				fmt.Fprintf(&b, "  `%s` %s%s\n", c.Name, athenaType(c.Type), comma(i, len(t.cols)))
			}
			fmt.Fprintf(&b, ")\nPARTITIONED BY (`date` string, `hour` string)\nSTORED AS PARQUET\nLOCATION '%s/%s/'\nTBLPROPERTIES (\n", base, t.name)
			fmt.Fprintf(&b, "  'projection.enabled' = 'true',\n  'projection.date.type' = 'date',\n  'projection.date.format' = 'yyyy-MM-dd',\n  'projection.date.range' = '2020-01-01,NOW',\n")
			fmt.Fprintf(&b, "  'projection.hour.type' = 'integer',\n  'projection.hour.range' = '0,23',\n  'projection.hour.digits' = '2',\n")
			fmt.Fprintf(&b, "  'storage.location.template' = '%s/%s/date=${date}/hour=${hour}/'\n);\n\n", base, t.name)
		}
	case "clickhouse":
		httpBase := base
		if u.Scheme == "s3" {
			httpBase = "https://" + u.Host + ".s3.amazonaws.com" + strings.TrimSuffix(u.Path, "/")
		}
		b.WriteString("-- ClickHouse: tables over s3() read files in place; S3Queue + a materialized view ingests each new file once.\n")
		b.WriteString("-- The *.parquet globs skip each hour's _manifest.json.\n")
		for _, t := range []struct {
			name string
			cols []Column
		}{{"events", EventColumns}, {"rejected", RejectedColumns}} {
			fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS sluice_%s_s3 (\n", t.name)
			clickhouseCols(&b, t.cols)
			fmt.Fprintf(&b, ") ENGINE = S3('%s/%s/*/*/*.parquet', 'Parquet');\n\n", httpBase, t.name)
		}
		b.WriteString("CREATE TABLE IF NOT EXISTS sluice_events (\n")
		clickhouseCols(&b, EventColumns)
		b.WriteString(") ENGINE = ReplacingMergeTree\nPARTITION BY toDate(kafka_time)\nORDER BY (src_topic, src_partition, src_offset);\n\n")
		b.WriteString("CREATE TABLE IF NOT EXISTS sluice_events_queue (\n")
		clickhouseCols(&b, EventColumns)
		fmt.Fprintf(&b, ") ENGINE = S3Queue('%s/events/*/*/*.parquet', 'Parquet')\nSETTINGS mode = 'unordered';\n\n", httpBase)
		b.WriteString("CREATE MATERIALIZED VIEW IF NOT EXISTS sluice_events_mv TO sluice_events AS SELECT * FROM sluice_events_queue;\n")
	default:
		return "", fmt.Errorf("dialect %q: want one of %s", dialect, strings.Join(Dialects, ", "))
	}
	return b.String(), nil
}

func duckView(b *strings.Builder, name, glob string, cols []Column, hive bool) {
	fmt.Fprintf(b, "CREATE OR REPLACE VIEW %s AS\nSELECT\n", name)
	for _, c := range cols {
		fmt.Fprintf(b, "  CAST(%s AS %s) AS %s,\n", c.Name, duckType(c.Type), c.Name)
	}
	b.WriteString("  CAST(\"date\" AS DATE) AS \"date\",\n  CAST(\"hour\" AS INTEGER) AS \"hour\"\n")
	fmt.Fprintf(b, "FROM read_parquet('%s', hive_partitioning = true, union_by_name = true);\n", glob)
}

func clickhouseCols(b *strings.Builder, cols []Column) {
	for i, c := range cols {
		typ := clickhouseType(c.Type)
		if !c.Required {
			typ = "Nullable(" + typ + ")"
		}
		fmt.Fprintf(b, "  %s %s%s\n", c.Name, typ, comma(i, len(cols)))
	}
}

func comma(i, n int) string {
	if i < n-1 {
		return ","
	}
	return ""
}

func notNull(required bool) string {
	if required {
		return " NOT NULL"
	}
	return ""
}

func duckType(t string) string {
	return map[string]string{TypeString: "VARCHAR", TypeTimestampMs: "TIMESTAMP_MS", TypeDouble: "DOUBLE", TypeBoolean: "BOOLEAN",
		TypeInt32: "INTEGER", TypeInt64: "BIGINT", TypeBinary: "BLOB"}[t]
}

func snowflakeType(t string) string {
	return map[string]string{TypeString: "VARCHAR", TypeTimestampMs: "TIMESTAMP_NTZ(3)", TypeDouble: "DOUBLE", TypeBoolean: "BOOLEAN",
		TypeInt32: "NUMBER(10,0)", TypeInt64: "NUMBER(19,0)", TypeBinary: "BINARY"}[t]
}

func bigqueryType(t string) string {
	return map[string]string{TypeString: "STRING", TypeTimestampMs: "TIMESTAMP", TypeDouble: "FLOAT64", TypeBoolean: "BOOL",
		TypeInt32: "INT64", TypeInt64: "INT64", TypeBinary: "BYTES"}[t]
}

func athenaType(t string) string {
	return map[string]string{TypeString: "string", TypeTimestampMs: "timestamp", TypeDouble: "double", TypeBoolean: "boolean",
		TypeInt32: "int", TypeInt64: "bigint", TypeBinary: "binary"}[t]
}

func clickhouseType(t string) string {
	return map[string]string{TypeString: "String", TypeTimestampMs: "DateTime64(3, 'UTC')", TypeDouble: "Float64", TypeBoolean: "Bool",
		TypeInt32: "Int32", TypeInt64: "Int64", TypeBinary: "String"}[t]
}
