// Package pipeline holds sluice's typed event model, the Stage and Sink
// contracts, and the runner: a Kafka consumer-group source with one worker
// per assigned partition that runs the stages and flushes offset ranges.
package pipeline

import (
	"net/netip"
	"unicode/utf8"

	"github.com/sluicedata/sluice/internal/arena"
)

// State is what becomes of an event after the stages ran.
type State uint8

const (
	// Keep writes the event to the events output.
	Keep State = iota
	// Rejected writes the record to the rejected output with its reason.
	Rejected
	// Dropped writes nothing (for example an input duplicate). Its offset
	// still resolves with the flush that covers it. RejectStage names the
	// stage that dropped it (dedupe: a duplicate; any other: filtered).
	Dropped
)

// Event is one Kafka record on its way through the stages.
//
// NULL rule (DESIGN.md, "Output"): an optional column is NULL exactly when
// its input had no value. For the text fields copied from the input
// (SessionID, AppID, Platform, PageURL, Referrer, Properties, Extra) and for
// UserID, Present tells whether the input had the field with a non-null
// value; "" is then a value like any other. Derived text (pseudonyms, the
// anonymized IP, geo and user-agent columns) is "" when the derivation has
// no result, and is written as NULL.
//
// The raw user id and the raw IP are held only in memory for the stages that
// need them (pseudonymize, geo); sinks never write them.
//
// Lifetime: like Raw, the text fields decode and pseudonymize set alias
// memory that is reused for the partition's next batch (the stages'
// arenas, internal/arena). They are valid
// only while the batch is processed; whatever keeps text past the batch —
// a cache's key or value, a sink's staged row — copies it.
type Event struct {
	// Lineage, set by the source.
	Topic     string
	Partition int32
	Offset    int64
	KafkaTime int64 // Kafka record timestamp, ms since the Unix epoch
	// Index is the event's position in its record (src_index): 0 for a
	// record that holds one event; a Snowplow POST holds many.
	Index int32
	// Raw is the record value. It aliases the Kafka record and is valid
	// only while the batch is being processed. nil for a tombstone (a
	// record whose value is null), empty for an empty value.
	Raw []byte

	// Decoded input (stage decode).
	EventID    string
	EventName  string
	EventTime  int64 // ms since the Unix epoch, from input ts
	Present    Fields
	UserID     string
	SessionID  string
	AppID      string
	Platform   string
	PageURL    string
	Referrer   string
	UserAgent  string
	IP         netip.Addr // valid only if the input ip parsed
	IPInvalid  bool       // input had an ip that is not an address
	Properties string     // JSON object text
	Extra      string     // JSON object of unknown top-level fields
	// Snowplow: the self-describing event's schema URI, the contexts (a
	// JSON array of {schema, data}), and the raw cookie ids (domain user
	// id, network user id), personal data that pseudonymize replaces.
	EventSchema   string
	Contexts      string
	DomainUserID  string
	NetworkUserID string

	// Enrichment.
	UserPseudoID        string
	PseudoKeyID         string
	DomainUserPseudoID  string
	NetworkUserPseudoID string
	IPAnonymized        string
	Geo                 Geo
	UA                  UserAgent

	// Disposition.
	State        State
	RejectStage  string // the stage that rejected or dropped the event
	RejectReason string
}

// Fields is a set of optional input fields of an Event.
type Fields uint16

// The optional input fields whose presence Event.Present records.
const (
	HasUserID Fields = 1 << iota
	HasSessionID
	HasAppID
	HasPlatform
	HasPageURL
	HasReferrer
	HasUserAgent
	HasProperties
	HasExtra
	HasEventSchema
	HasContexts
	HasDomainUserID
	HasNetworkUserID
)

// Has tells whether the input had every field of f with a non-null value.
func (e *Event) Has(f Fields) bool { return e.Present&f == f }

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
	OSVersion      string
	DeviceClass    string
	IsBot          bool
	Known          bool
}

// MaxReasonLen bounds a reject reason, in bytes: longer reasons keep their
// start, cut at a UTF-8 boundary, and end in "…".
const MaxReasonLen = 300

// Reject marks the event rejected by stage with a human-readable reason
// (at most MaxReasonLen bytes: a parser's message can quote a whole record).
func (e *Event) Reject(stage, reason string) {
	e.State = Rejected
	e.RejectStage = stage
	e.RejectReason = ShortReason(reason)
}

// ShortReason returns reason cut to at most MaxReasonLen bytes, keeping its
// start and ending in "…" when cut.
func ShortReason(reason string) string {
	if len(reason) <= MaxReasonLen {
		return reason
	}
	const ellipsis = "…"
	n := MaxReasonLen - len(ellipsis)
	for n > 0 && !utf8.RuneStart(reason[n]) {
		n--
	}
	return reason[:n] + ellipsis
}

// Batch is a run of consecutive records of one partition, in offset order.
// A worker owns the batch while it runs it through the stages and the
// sink; stages modify events in place. Workers reuse batches: the memory
// of the batch run last (its events, its text) is the one most likely in
// the CPU's caches, whichever partition it was for.
type Batch struct {
	Topic     string
	Partition int32
	Events    []Event
	// SealedBefore (ms, an hour boundary; 0 none) is the partition's
	// sealed time: its hours before it may already have a manifest, so a
	// record whose Kafka time is earlier (a late producer clock) goes to
	// the hour starting at SealedBefore instead of its own. Set by the
	// worker from the partition state; the same for every batch of a range,
	// so a re-run places records as the first run did.
	SealedBefore int64
	// Text is the arena of the text stages give the batch's events: valid
	// until the batch's next Reset. Reset begins it; a batch never reset
	// gives each string an allocation of its own.
	Text arena.Text
}

// HourMs is the Unix hour (hours since the epoch) an event of Kafka time
// ms is placed in, given the partition's sealed time (Batch.SealedBefore).
func HourMs(ms, sealedBefore int64) int64 {
	h := ms / 3_600_000
	if ms < 0 && ms%3_600_000 != 0 {
		h--
	}
	if s := sealedBefore / 3_600_000; sealedBefore > 0 && h < s {
		h = s
	}
	return h
}

// Reset empties the batch, keeping its capacity, and begins its text
// arena: the text of the events before it is gone.
func (b *Batch) Reset() {
	clear(b.Events)
	b.Events = b.Events[:0]
	b.Text.Begin()
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
