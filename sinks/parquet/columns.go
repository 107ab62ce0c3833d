package parquet

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
}

// EventColumns are the columns of the events output, in file order.
var EventColumns = []Column{
	{"event_id", TypeString, true, "input event_id", PrivacyEvent},
	{"event_name", TypeString, true, "input event", PrivacyEvent},
	{"event_time", TypeTimestampMs, true, "input ts (UTC, ms)", PrivacyEvent},
	{"kafka_time", TypeTimestampMs, true, "Kafka record timestamp (UTC, ms)", PrivacyLineage},
	{"app_id", TypeString, false, "input app_id", PrivacyEvent},
	{"platform", TypeString, false, "input platform", PrivacyEvent},
	{"session_id", TypeString, false, "input session_id (pseudonymized if listed in pseudonymize.fields)", PrivacyIdentifier},
	{"page_url", TypeString, false, "input page_url", PrivacyFreeForm},
	{"page_referrer", TypeString, false, "input referrer", PrivacyFreeForm},
	{"user_pseudo_id", TypeString, false, "hex HMAC-SHA256(key, input user_id as text)", PrivacyPseudonymized},
	{"pseudo_key_id", TypeString, false, "id of the key that made user_pseudo_id", PrivacyDerived},
	{"ip_anonymized", TypeString, false, "input ip, low bits zeroed (IPv4 8, IPv6 80 by default)", PrivacyNetworkAnonymized},
	{"geo_country_code", TypeString, false, "GeoIP country ISO code, from input ip", PrivacyDerived},
	{"geo_country", TypeString, false, "GeoIP country name (English), from input ip", PrivacyDerived},
	{"geo_region_code", TypeString, false, "GeoIP first subdivision code, from input ip", PrivacyDerived},
	{"geo_region", TypeString, false, "GeoIP first subdivision name (English), from input ip", PrivacyDerived},
	{"geo_city", TypeString, false, "GeoIP city name (English), from input ip", PrivacyDerived},
	{"geo_postal_code", TypeString, false, "GeoIP postal code, from input ip", PrivacyDerived},
	{"geo_timezone", TypeString, false, "GeoIP time zone, from input ip", PrivacyDerived},
	{"geo_latitude", TypeDouble, false, "GeoIP approximate latitude, from input ip", PrivacyDerived},
	{"geo_longitude", TypeDouble, false, "GeoIP approximate longitude, from input ip", PrivacyDerived},
	{"ua_browser", TypeString, false, "browser, from input user_agent", PrivacyDerived},
	{"ua_browser_version", TypeString, false, "browser version, from input user_agent", PrivacyDerived},
	{"ua_os", TypeString, false, "operating system, from input user_agent", PrivacyDerived},
	{"ua_device_class", TypeString, false, "desktop, mobile or bot, from input user_agent", PrivacyDerived},
	{"ua_is_bot", TypeBoolean, false, "bot or automated client, from input user_agent", PrivacyDerived},
	{"properties", TypeString, false, "input properties as JSON text", PrivacyFreeForm},
	{"extra", TypeString, false, "unknown top-level input fields as JSON text", PrivacyFreeForm},
	{"src_topic", TypeString, true, "Kafka topic", PrivacyLineage},
	{"src_partition", TypeInt32, true, "Kafka partition", PrivacyLineage},
	{"src_offset", TypeInt64, true, "Kafka offset", PrivacyLineage},
}

// RejectedColumns are the columns of the rejected output, in file order.
var RejectedColumns = []Column{
	{"src_topic", TypeString, true, "Kafka topic", PrivacyLineage},
	{"src_partition", TypeInt32, true, "Kafka partition", PrivacyLineage},
	{"src_offset", TypeInt64, true, "Kafka offset", PrivacyLineage},
	{"kafka_time", TypeTimestampMs, true, "Kafka record timestamp (UTC, ms)", PrivacyLineage},
	{"stage", TypeString, true, "stage that rejected the record", PrivacyDerived},
	{"error", TypeString, true, "why it was rejected", PrivacyDerived},
	{"raw", TypeBinary, true, "the record value, unchanged (may hold personal data)", PrivacyFreeForm},
}
