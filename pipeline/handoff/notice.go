package handoff

import (
	"encoding/json"
	"time"

	"github.com/sluicedata/sluice/pipeline/delivery"
)

// A notification is one JSON message on sink.notify_topic, keyed by its
// ID. A replay may send one again: ID is stable (a file's key, a
// manifest's key), so a consumer that acts once per ID acts once.

// FileNotice announces one file, after its range is recorded done.
type FileNotice struct {
	Type              string `json:"type"` // "file"
	ID                string `json:"id"`   // = Key
	Key               string `json:"key"`
	Output            string `json:"output"`
	Date              string `json:"date"`
	Hour              int    `json:"hour"`
	Rows              int64  `json:"rows"`
	Bytes             int64  `json:"bytes"`
	Topic             string `json:"topic"`
	Partition         int32  `json:"partition"`
	FirstOffset       int64  `json:"first_offset"`
	LastOffset        int64  `json:"last_offset"`
	MinEventTime      string `json:"min_event_time,omitempty"`
	MaxEventTime      string `json:"max_event_time,omitempty"`
	SchemaFingerprint string `json:"schema_fingerprint"`
}

// HourNotice announces one manifest: the hour of the output is complete.
type HourNotice struct {
	Type              string `json:"type"` // "hour"
	ID                string `json:"id"`   // = Key
	Key               string `json:"key"`  // the manifest's key
	Output            string `json:"output"`
	Date              string `json:"date"`
	Hour              int    `json:"hour"`
	Files             int    `json:"files"`
	Rows              int64  `json:"rows"`
	Bytes             int64  `json:"bytes"`
	Records           int64  `json:"records"` // the hour's records, all partitions
	SchemaFingerprint string `json:"schema_fingerprint"`
}

// NewFileNotice is the notice of file f of topic/partition.
func NewFileNotice(topic string, partition int32, f delivery.LedgerFile, fingerprint string) FileNotice {
	t := time.Unix(f.Hour*3600, 0).UTC()
	n := FileNotice{Type: "file", ID: f.Key, Key: f.Key, Output: f.Output, Date: t.Format("2006-01-02"), Hour: t.Hour(),
		Rows: f.Rows, Bytes: f.Bytes, Topic: topic, Partition: partition, FirstOffset: f.First, LastOffset: f.Last,
		SchemaFingerprint: fingerprint}
	if f.Output == "events" && f.Rows > 0 {
		n.MinEventTime, n.MaxEventTime = msTime(f.MinEventTime), msTime(f.MaxEventTime)
	}
	return n
}

// NewHourNotice is the notice of manifest m stored at key.
func NewHourNotice(m Manifest, key string) HourNotice {
	return HourNotice{Type: "hour", ID: key, Key: key, Output: m.Output, Date: m.Date, Hour: m.Hour,
		Files: len(m.Files), Rows: m.Rows, Bytes: m.Bytes, Records: m.Totals.Records, SchemaFingerprint: m.SchemaFingerprint}
}

// Encode is a notice's message value.
func Encode(n any) []byte {
	b, err := json.Marshal(n)
	if err != nil {
		panic(err) // plain structs: cannot fail
	}
	return b
}
