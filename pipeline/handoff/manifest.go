// Package handoff tells warehouse loaders when an hour of output is
// complete and exactly which files make it (DESIGN.md, "Output"): from the
// partition states' ledgers it writes, once per hour and output,
// <output>/date=D/hour=HH/_manifest.json, reconciled per partition, and
// announces it. Any replica may run it: the manifest is a pure function of
// the sealed ledgers, created with compare-and-swap, so exactly one write
// succeeds and every replica computes the same bytes.
package handoff

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/sluicedata/sluice/pipeline/delivery"
)

// ManifestVersion is the version of the manifest format.
const ManifestVersion = 1

// Manifest is one hour of one output, complete.
type Manifest struct {
	Version int    `json:"version"`
	Output  string `json:"output"` // events | rejected
	Date    string `json:"date"`   // YYYY-MM-DD
	Hour    int    `json:"hour"`   // 0-23
	Start   string `json:"start"`  // RFC 3339, UTC: the hour's first instant
	End     string `json:"end"`    // the next hour's first instant
	Group   string `json:"group"`
	// SchemaFingerprint is the SHA-256 of the files' Parquet schema.
	SchemaFingerprint string `json:"schema_fingerprint"`
	Files             []File `json:"files"`
	Rows              int64  `json:"rows"`  // sum of the files' rows
	Bytes             int64  `json:"bytes"` // sum of the files' bytes
	// Partitions reconcile every consumed partition's records of the hour:
	// records = events + rejected + duplicates + filtered.
	Partitions []Reconciliation `json:"partitions"`
	Totals     Counts           `json:"totals"`
}

// File is one file of the hour.
type File struct {
	Key          string `json:"key"`
	Rows         int64  `json:"rows"`
	Bytes        int64  `json:"bytes"`
	Topic        string `json:"topic"`
	Partition    int32  `json:"partition"`
	FirstOffset  int64  `json:"first_offset"`
	LastOffset   int64  `json:"last_offset"`
	MinEventTime string `json:"min_event_time,omitempty"` // events files: RFC 3339 with ms
	MaxEventTime string `json:"max_event_time,omitempty"`
}

// Counts is what became of records.
type Counts struct {
	Records    int64 `json:"records"`
	Events     int64 `json:"events"`
	Rejected   int64 `json:"rejected"`
	Duplicates int64 `json:"duplicates"`
	Filtered   int64 `json:"filtered"`
}

func (c *Counts) add(o Counts) {
	c.Records += o.Records
	c.Events += o.Events
	c.Rejected += o.Rejected
	c.Duplicates += o.Duplicates
	c.Filtered += o.Filtered
}

// Balanced tells whether every record is accounted for.
func (c Counts) Balanced() bool {
	return c.Records == c.Events+c.Rejected+c.Duplicates+c.Filtered
}

// Reconciliation is one partition's part of the hour.
type Reconciliation struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Counts
	// Ranges are the offset ranges whose records fall in the hour.
	Ranges []delivery.OffsetRange `json:"ranges"`
}

// ManifestKey is the object key of an output's manifest for unix hour h.
func ManifestKey(output string, h int64) string {
	t := time.Unix(h*3600, 0).UTC()
	return fmt.Sprintf("%s/date=%s/hour=%02d/_manifest.json", output, t.Format("2006-01-02"), t.Hour())
}

func msTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

// Partition is one consumed partition's state, as the manifest builder
// sees it.
type Partition struct {
	Topic     string
	Partition int32
	State     delivery.PartitionState
}

// Build returns the manifest of unix hour h for output from every consumed
// partition's state (sorted by topic and partition; a partition without
// records in h reconciles as zeros). Its bytes are a pure function of the
// ledgers' entries for h.
func Build(group, output, fingerprint string, h int64, parts []Partition) Manifest {
	start := time.Unix(h*3600, 0).UTC()
	m := Manifest{
		Version: ManifestVersion, Output: output, Group: group,
		Date: start.Format("2006-01-02"), Hour: start.Hour(),
		Start:             start.Format(time.RFC3339),
		End:               start.Add(time.Hour).Format(time.RFC3339),
		SchemaFingerprint: fingerprint,
		Files:             []File{},
		Partitions:        make([]Reconciliation, 0, len(parts)),
	}
	for _, p := range parts {
		l := p.State.Ledger(h)
		c := Counts{Records: l.Records, Events: l.Events, Rejected: l.Rejected, Duplicates: l.Duplicates, Filtered: l.Filtered}
		ranges := l.Ranges
		if ranges == nil {
			ranges = []delivery.OffsetRange{}
		}
		m.Partitions = append(m.Partitions, Reconciliation{Topic: p.Topic, Partition: p.Partition, Counts: c, Ranges: ranges})
		m.Totals.add(c)
		for _, f := range l.Files {
			if f.Output != output {
				continue
			}
			mf := File{Key: f.Key, Rows: f.Rows, Bytes: f.Bytes, Topic: p.Topic, Partition: p.Partition,
				FirstOffset: f.First, LastOffset: f.Last}
			if f.Output == "events" && f.Rows > 0 {
				mf.MinEventTime, mf.MaxEventTime = msTime(f.MinEventTime), msTime(f.MaxEventTime)
			}
			m.Files = append(m.Files, mf)
			m.Rows += f.Rows
			m.Bytes += f.Bytes
		}
	}
	slices.SortFunc(m.Partitions, func(a, b Reconciliation) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	slices.SortFunc(m.Files, func(a, b File) int { return cmp.Compare(a.Key, b.Key) })
	return m
}

// Encode is the manifest's bytes: indented JSON and a newline.
func (m Manifest) Encode() []byte {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err) // plain structs: cannot fail
	}
	return append(b, '\n')
}
