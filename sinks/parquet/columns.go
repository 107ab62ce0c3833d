package parquet

import (
	"crypto/sha256"
	"encoding/hex"

	pq "github.com/parquet-go/parquet-go"
)

// Privacy classes of output columns (`sluice schema` shows them).
const (
	// Event: what the event is and when it happened, as the tracker sent it.
	PrivacyEvent = "event"
	// IdentifierPseudonymized: a keyed pseudonym; the raw identifier is
	// never written.
	PrivacyPseudonymized = "identifier-pseudonymized"
	// Identifier: an identifier written as sent (session_id, unless the
	// pseudonymize stage lists it in fields).
	PrivacyIdentifier = "identifier"
	// NetworkAnonymized: the IP with its low bits zeroed.
	PrivacyNetworkAnonymized = "network-anonymized"
	// Derived: computed from an input the output does not keep (geo from
	// the IP, user-agent fields from the agent string).
	PrivacyDerived = "derived"
	// FreeForm: text the tracker chose; may hold anything it sends.
	PrivacyFreeForm = "free-form"
	// Lineage: where the record came from in Kafka.
	PrivacyLineage = "lineage"
)

// Logical column types, mapped to each warehouse's types by the DDL.
const (
	TypeString      = "string"
	TypeTimestampMs = "timestamp_ms"
	TypeDouble      = "double"
	TypeBoolean     = "boolean"
	TypeInt32       = "int32"
	TypeInt64       = "int64"
	TypeBinary      = "binary"
)

// Column describes one output column: the data dictionary that `sluice
// schema` prints and the DDL generator uses. A test holds it equal to the
// Parquet schema the writer produces.
type Column struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required"`
	Source   string `json:"source"`
	Privacy  string `json:"privacy"`
	// Null says when an optional column is NULL ("" for required ones).
	Null string `json:"null,omitempty"`
}

// NullRule is the one rule behind every Column.Null (DESIGN.md, "Output").
const NullRule = "An optional column is NULL exactly when its input had no value: the field absent or JSON null. " +
	"An input \"\" is a value: columns copied from the input keep it as \"\", user_id \"\" is pseudonymized like any id. " +
	"Derived columns (geo, user agent) are NULL when their input gives no result: ip \"\" is not an address, user_agent \"\" names no agent."

// Null texts of the optional columns.
const (
	nullInput   = "input field absent or null (\"\" is kept)"
	nullUserID  = "input user_id absent or null (\"\" is pseudonymized)"
	nullIP      = "input ip absent, null or not an address"
	nullGeo     = "input ip absent, null, not an address, or the GeoIP database has no value"
	nullUA      = "input user_agent absent, null or \"\", or the parser finds no value"
	nullUAIsBot = "input user_agent absent, null or \"\""
)

// EventColumns are the columns of the events output, in file order.
var EventColumns = []Column{
	{"event_id", TypeString, true, "input event_id", PrivacyEvent, ""},
	{"event_name", TypeString, true, "input event", PrivacyEvent, ""},
	{"event_time", TypeTimestampMs, true, "input ts (UTC, ms)", PrivacyEvent, ""},
	{"kafka_time", TypeTimestampMs, true, "Kafka record timestamp (UTC, ms)", PrivacyLineage, ""},
	{"app_id", TypeString, false, "input app_id", PrivacyEvent, nullInput},
	{"platform", TypeString, false, "input platform", PrivacyEvent, nullInput},
	{"session_id", TypeString, false, "input session_id (pseudonymized if listed in pseudonymize.fields)", PrivacyIdentifier, nullInput},
	{"page_url", TypeString, false, "input page_url", PrivacyFreeForm, nullInput},
	{"page_referrer", TypeString, false, "input referrer", PrivacyFreeForm, nullInput},
	{"user_pseudo_id", TypeString, false, "hex HMAC-SHA256(key, input user_id as text)", PrivacyPseudonymized, nullUserID},
	{"pseudo_key_id", TypeString, false, "id of the key that made user_pseudo_id", PrivacyDerived, nullUserID},
	{"ip_anonymized", TypeString, false, "input ip, low bits zeroed (IPv4 8, IPv6 80 by default)", PrivacyNetworkAnonymized, nullIP},
	{"geo_country_code", TypeString, false, "GeoIP country ISO code, from input ip", PrivacyDerived, nullGeo},
	{"geo_country", TypeString, false, "GeoIP country name (English), from input ip", PrivacyDerived, nullGeo},
	{"geo_region_code", TypeString, false, "GeoIP first subdivision code, from input ip", PrivacyDerived, nullGeo},
	{"geo_region", TypeString, false, "GeoIP first subdivision name (English), from input ip", PrivacyDerived, nullGeo},
	{"geo_city", TypeString, false, "GeoIP city name (English), from input ip", PrivacyDerived, nullGeo},
	{"geo_postal_code", TypeString, false, "GeoIP postal code, from input ip", PrivacyDerived, nullGeo},
	{"geo_timezone", TypeString, false, "GeoIP time zone, from input ip", PrivacyDerived, nullGeo},
	{"geo_latitude", TypeDouble, false, "GeoIP approximate latitude, from input ip", PrivacyDerived, nullGeo},
	{"geo_longitude", TypeDouble, false, "GeoIP approximate longitude, from input ip", PrivacyDerived, nullGeo},
	{"ua_browser", TypeString, false, "browser family in uap-core's vocabulary (Chrome, Chrome Mobile, Mobile Safari, Firefox, Edge, Samsung Internet, …), from input user_agent", PrivacyDerived, nullUA},
	{"ua_browser_version", TypeString, false, "browser version as given (124.0.6367), from input user_agent", PrivacyDerived, nullUA},
	{"ua_os", TypeString, false, "OS family (Windows, Mac OS X, iOS, Android, Linux, Chrome OS, …), from input user_agent", PrivacyDerived, nullUA},
	{"ua_os_version", TypeString, false, "OS version as given (17.4, 10, 14), from input user_agent", PrivacyDerived, nullUA},
	{"ua_device_class", TypeString, false, "desktop, mobile, tablet or bot, from input user_agent", PrivacyDerived, nullUA},
	{"ua_is_bot", TypeBoolean, false, "bot or automated client, from input user_agent", PrivacyDerived, nullUAIsBot},
	{"properties", TypeString, false, "input properties as JSON text", PrivacyFreeForm, "input properties absent or null ({} is kept)"},
	{"extra", TypeString, false, "unknown top-level input fields as JSON text (Snowplow: the parameters without a column)", PrivacyFreeForm, "no unknown top-level input fields"},
	{"event_schema", TypeString, false, "Snowplow: the self-describing event's schema URI (iglu:vendor/name/jsonschema/1-0-0)", PrivacyEvent, "not a Snowplow self-describing event"},
	{"contexts", TypeString, false, "Snowplow: the event's contexts, a JSON array of {schema, data}", PrivacyFreeForm, "no contexts (cx/co) in the event"},
	{"domain_user_pseudo_id", TypeString, false, "Snowplow: hex HMAC-SHA256(key, duid), like user_pseudo_id", PrivacyPseudonymized, "no duid in the event"},
	{"network_user_pseudo_id", TypeString, false, "Snowplow: hex HMAC-SHA256(key, network user id: the collector's cookie or tnuid)", PrivacyPseudonymized, "no network user id"},
	{"src_topic", TypeString, true, "Kafka topic", PrivacyLineage, ""},
	{"src_partition", TypeInt32, true, "Kafka partition", PrivacyLineage, ""},
	{"src_offset", TypeInt64, true, "Kafka offset", PrivacyLineage, ""},
	{"src_index", TypeInt32, true, "the event's position in its record (0 for one-event records; a Snowplow POST holds many)", PrivacyLineage, ""},
}

// RejectedColumns are the columns of the rejected output, in file order.
var RejectedColumns = []Column{
	{"src_topic", TypeString, true, "Kafka topic", PrivacyLineage, ""},
	{"src_partition", TypeInt32, true, "Kafka partition", PrivacyLineage, ""},
	{"src_offset", TypeInt64, true, "Kafka offset", PrivacyLineage, ""},
	{"src_index", TypeInt32, true, "the event's position in its record (0 for the whole record)", PrivacyLineage, ""},
	{"kafka_time", TypeTimestampMs, true, "Kafka record timestamp (UTC, ms)", PrivacyLineage, ""},
	{"stage", TypeString, true, "stage that rejected the record", PrivacyDerived, ""},
	{"error", TypeString, true, "why it was rejected", PrivacyDerived, ""},
	{"raw", TypeBinary, true, "the record value, unchanged (may hold personal data)", PrivacyFreeForm, ""},
}

// SchemaFingerprint is the lowercase hex SHA-256 of an output's Parquet
// schema as its files carry it (the schema's message text: names, order,
// physical and logical types, repetition). It changes exactly when the
// files' schema does; manifests and notifications carry it.
func SchemaFingerprint(output string) string {
	switch output {
	case "events":
		return fingerprints[0]
	case "rejected":
		return fingerprints[1]
	}
	return ""
}

var fingerprints = [2]string{
	fingerprint(pq.SchemaOf(EventRow{}).String()),
	fingerprint(pq.SchemaOf(RejectedRow{}).String()),
}

func fingerprint(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
