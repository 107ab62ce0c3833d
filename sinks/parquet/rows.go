package parquet

import (
	"github.com/sluicedata/sluice/pipeline"
)

// EventRow declares the schema of the events output (addEvents writes its
// rows). Column names, order and types are the contract of DESIGN.md
// ("Output"): snake_case, timestamps as INT64 TIMESTAMP(MILLIS,
// UTC-adjusted); optional columns are pointers; the dict tag marks the
// dictionary-encoded columns.
type EventRow struct {
	EventID           string   `parquet:"event_id"`
	EventName         string   `parquet:"event_name,dict"`
	EventTime         int64    `parquet:"event_time,timestamp(millisecond)"`
	KafkaTime         int64    `parquet:"kafka_time,timestamp(millisecond)"`
	AppID             *string  `parquet:"app_id,optional,dict"`
	Platform          *string  `parquet:"platform,optional,dict"`
	SessionID         *string  `parquet:"session_id,optional"`
	PageURL           *string  `parquet:"page_url,optional"`
	PageReferrer      *string  `parquet:"page_referrer,optional"`
	UserPseudoID      *string  `parquet:"user_pseudo_id,optional"`
	PseudoKeyID       *string  `parquet:"pseudo_key_id,optional,dict"`
	IPAnonymized      *string  `parquet:"ip_anonymized,optional"`
	GeoCountryCode    *string  `parquet:"geo_country_code,optional,dict"`
	GeoCountry        *string  `parquet:"geo_country,optional,dict"`
	GeoRegionCode     *string  `parquet:"geo_region_code,optional,dict"`
	GeoRegion         *string  `parquet:"geo_region,optional,dict"`
	GeoCity           *string  `parquet:"geo_city,optional,dict"`
	GeoPostalCode     *string  `parquet:"geo_postal_code,optional,dict"`
	GeoTimezone       *string  `parquet:"geo_timezone,optional,dict"`
	GeoLatitude       *float64 `parquet:"geo_latitude,optional"`
	GeoLongitude      *float64 `parquet:"geo_longitude,optional"`
	UABrowser         *string  `parquet:"ua_browser,optional,dict"`
	UABrowserVersion  *string  `parquet:"ua_browser_version,optional,dict"`
	UAOS              *string  `parquet:"ua_os,optional,dict"`
	UAOSVersion       *string  `parquet:"ua_os_version,optional,dict"`
	UADeviceClass     *string  `parquet:"ua_device_class,optional,dict"`
	UAIsBot           *bool    `parquet:"ua_is_bot,optional"`
	Properties        *string  `parquet:"properties,optional"`
	Extra             *string  `parquet:"extra,optional"`
	EventSchema       *string  `parquet:"event_schema,optional,dict"`
	Contexts          *string  `parquet:"contexts,optional"`
	DomainUserPseudo  *string  `parquet:"domain_user_pseudo_id,optional"`
	NetworkUserPseudo *string  `parquet:"network_user_pseudo_id,optional"`
	SrcTopic          string   `parquet:"src_topic,dict"`
	SrcPartition      int32    `parquet:"src_partition"`
	SrcOffset         int64    `parquet:"src_offset"`
	SrcIndex          int32    `parquet:"src_index"`
}

// RejectedRow declares the schema of the rejected output (addRejected
// writes its rows). Raw is the record value as plain BYTE_ARRAY (no
// string annotation: it may not be text).
type RejectedRow struct {
	SrcTopic     string `parquet:"src_topic,dict"`
	SrcPartition int32  `parquet:"src_partition"`
	SrcOffset    int64  `parquet:"src_offset"`
	SrcIndex     int32  `parquet:"src_index"`
	KafkaTime    int64  `parquet:"kafka_time,timestamp(millisecond)"`
	Stage        string `parquet:"stage"`
	Error        string `parquet:"error"`
	Raw          []byte `parquet:"raw"`
}

// addEvents writes the rows of evs to the events output (EventRow's
// columns, in order, a column at a time), applying the NULL rule of
// pipeline.Event: input text is NULL when the input had no value ("" is a
// value), derived text when it is "". The raw user id and IP are not
// columns: they cannot leak.
func addEvents(w *fileWriter, evs []*pipeline.Event) {
	type ev = *pipeline.Event
	derived := func(s string) (string, bool) { return s, s != "" }
	w.strs(0, evs, func(e ev) (string, bool) { return e.EventID, true })
	w.strs(1, evs, func(e ev) (string, bool) { return e.EventName, true })
	w.i64s(2, evs, func(e ev) int64 { return e.EventTime })
	w.i64s(3, evs, func(e ev) int64 { return e.KafkaTime })
	w.strs(4, evs, func(e ev) (string, bool) { return e.AppID, e.Present&pipeline.HasAppID != 0 })
	w.strs(5, evs, func(e ev) (string, bool) { return e.Platform, e.Present&pipeline.HasPlatform != 0 })
	w.strs(6, evs, func(e ev) (string, bool) { return e.SessionID, e.Present&pipeline.HasSessionID != 0 })
	w.strs(7, evs, func(e ev) (string, bool) { return e.PageURL, e.Present&pipeline.HasPageURL != 0 })
	w.strs(8, evs, func(e ev) (string, bool) { return e.Referrer, e.Present&pipeline.HasReferrer != 0 })
	w.strs(9, evs, func(e ev) (string, bool) { return derived(e.UserPseudoID) })
	w.strs(10, evs, func(e ev) (string, bool) { return derived(e.PseudoKeyID) })
	w.strs(11, evs, func(e ev) (string, bool) { return derived(e.IPAnonymized) })
	w.strs(12, evs, func(e ev) (string, bool) { return derived(e.Geo.CountryCode) })
	w.strs(13, evs, func(e ev) (string, bool) { return derived(e.Geo.Country) })
	w.strs(14, evs, func(e ev) (string, bool) { return derived(e.Geo.RegionCode) })
	w.strs(15, evs, func(e ev) (string, bool) { return derived(e.Geo.Region) })
	w.strs(16, evs, func(e ev) (string, bool) { return derived(e.Geo.City) })
	w.strs(17, evs, func(e ev) (string, bool) { return derived(e.Geo.PostalCode) })
	w.strs(18, evs, func(e ev) (string, bool) { return derived(e.Geo.TimeZone) })
	w.f64s(19, evs, func(e ev) (float64, bool) { return e.Geo.Latitude, e.Geo.HasLocation })
	w.f64s(20, evs, func(e ev) (float64, bool) { return e.Geo.Longitude, e.Geo.HasLocation })
	w.strs(21, evs, func(e ev) (string, bool) { return derived(e.UA.Browser) })
	w.strs(22, evs, func(e ev) (string, bool) { return derived(e.UA.BrowserVersion) })
	w.strs(23, evs, func(e ev) (string, bool) { return derived(e.UA.OS) })
	w.strs(24, evs, func(e ev) (string, bool) { return derived(e.UA.OSVersion) })
	w.strs(25, evs, func(e ev) (string, bool) { return derived(e.UA.DeviceClass) })
	w.booleans(26, evs, func(e ev) (bool, bool) { return e.UA.IsBot, e.UA.Known })
	w.strs(27, evs, func(e ev) (string, bool) { return e.Properties, e.Present&pipeline.HasProperties != 0 })
	w.strs(28, evs, func(e ev) (string, bool) { return e.Extra, e.Present&pipeline.HasExtra != 0 })
	w.strs(29, evs, func(e ev) (string, bool) { return e.EventSchema, e.Present&pipeline.HasEventSchema != 0 })
	w.strs(30, evs, func(e ev) (string, bool) { return e.Contexts, e.Present&pipeline.HasContexts != 0 })
	w.strs(31, evs, func(e ev) (string, bool) { return derived(e.DomainUserPseudoID) })
	w.strs(32, evs, func(e ev) (string, bool) { return derived(e.NetworkUserPseudoID) })
	w.strs(33, evs, func(e ev) (string, bool) { return e.Topic, true })
	w.i32s(34, evs, func(e ev) int32 { return e.Partition })
	w.i64s(35, evs, func(e ev) int64 { return e.Offset })
	w.i32s(36, evs, func(e ev) int32 { return e.Index })
}

// addRejected writes the rows of evs to the rejected output.
func addRejected(w *fileWriter, evs []*pipeline.Event) {
	type ev = *pipeline.Event
	w.strs(0, evs, func(e ev) (string, bool) { return e.Topic, true })
	w.i32s(1, evs, func(e ev) int32 { return e.Partition })
	w.i64s(2, evs, func(e ev) int64 { return e.Offset })
	w.i32s(3, evs, func(e ev) int32 { return e.Index })
	w.i64s(4, evs, func(e ev) int64 { return e.KafkaTime })
	w.strs(5, evs, func(e ev) (string, bool) { return e.RejectStage, true })
	w.strs(6, evs, func(e ev) (string, bool) { return e.RejectReason, true })
	w.strs(7, evs, func(e ev) (string, bool) { return view(e.Raw), true })
}
