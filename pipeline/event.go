// Package pipeline holds sluice's typed event model, the Stage and Sink
// contracts, and the runner: a Kafka consumer-group source with one worker
// per assigned partition that runs the stages and flushes offset ranges.
package pipeline

import "net/netip"

// State is what becomes of an event after the stages ran.
type State uint8

const (
	// Keep writes the event to the events output.
	Keep State = iota
	// Rejected writes the record to the rejected output with its reason.
	Rejected
	// Dropped writes nothing (for example an input duplicate). Its offset
	// still resolves with the flush that covers it.
	Dropped
)

// Event is one Kafka record on its way through the stages. Fields are plain
// values: an empty string means "absent" and is written as null.
//
// The raw user id and the raw IP are held only in memory for the stages that
// need them (pseudonymize, geo); sinks never write them.
type Event struct {
	// Lineage, set by the source.
	Topic     string
	Partition int32
	Offset    int64
	KafkaTime int64 // Kafka record timestamp, ms since the Unix epoch
	// Raw is the record value. It aliases the Kafka record and is valid
	// only while the batch is being processed.
	Raw []byte

	// Decoded input (stage decode).
	EventID    string
	EventName  string
	EventTime  int64 // ms since the Unix epoch, from input ts
	UserID     string
	HasUserID  bool
	SessionID  string
	AppID      string
	Platform   string
	PageURL    string
	Referrer   string
	UserAgent  string
	IP         netip.Addr // valid only if the input ip parsed
	IPInvalid  bool       // input had an ip that is not an address
	Properties string     // JSON object text, or ""
	Extra      string     // JSON object of unknown top-level fields, or ""

	// Enrichment.
	UserPseudoID string
	PseudoKeyID  string
	IPAnonymized string
	Geo          Geo
	UA           UserAgent

	// Disposition.
	State        State
	RejectStage  string
	RejectReason string
}

// Geo holds the geo columns. HasLocation tells whether Latitude and
// Longitude are known (0,0 is a valid place).
type Geo struct {
	CountryCode string
	Country     string
	RegionCode  string
	Region      string
	City        string
	PostalCode  string
	TimeZone    string
	Latitude    float64
	Longitude   float64
	HasLocation bool
}

// UserAgent holds the parsed user-agent columns. Known tells whether the
// event had a user agent at all (ua_is_bot is null when it did not).
type UserAgent struct {
	Browser        string
	BrowserVersion string
	OS             string
	DeviceClass    string
	IsBot          bool
	Known          bool
}

// Reject marks the event rejected by stage with a human-readable reason.
func (e *Event) Reject(stage, reason string) {
	e.State = Rejected
	e.RejectStage = stage
	e.RejectReason = reason
}

// Batch is a run of consecutive records of one partition, in offset order.
// A worker owns its batch and reuses it; stages modify events in place.
type Batch struct {
	Topic     string
	Partition int32
	Events    []Event
}

// Reset empties the batch, keeping its capacity.
func (b *Batch) Reset() {
	clear(b.Events)
	b.Events = b.Events[:0]
}

// Counts returns how many events of b are kept, rejected and dropped.
func (b *Batch) Counts() (kept, rejected, dropped int) {
	for i := range b.Events {
		switch b.Events[i].State {
		case Keep:
			kept++
		case Rejected:
			rejected++
		case Dropped:
			dropped++
		}
	}
	return
}
