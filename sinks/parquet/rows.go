package parquet

import (
	"github.com/sluicedata/sluice/pipeline"
)

// EventRow declares the schema of the events output (addEvent writes its
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

// addEvent writes e as a row of the events output (EventRow's columns,
// in order), applying the NULL rule of pipeline.Event: input text is NULL
// when the input had no value ("" is a value), derived text when it is
// "". The raw user id and IP are not columns: they cannot leak.
func addEvent(w *fileWriter, e *pipeline.Event) {
	in := func(f pipeline.Fields) bool { return e.Present&f != 0 }
	derived := func(i int, s string) { w.str(i, s, s != "") }
	w.str(0, e.EventID, true)
	w.str(1, e.EventName, true)
	w.i64(2, e.EventTime)
	w.i64(3, e.KafkaTime)
	w.str(4, e.AppID, in(pipeline.HasAppID))
	w.str(5, e.Platform, in(pipeline.HasPlatform))
	w.str(6, e.SessionID, in(pipeline.HasSessionID))
	w.str(7, e.PageURL, in(pipeline.HasPageURL))
	w.str(8, e.Referrer, in(pipeline.HasReferrer))
	derived(9, e.UserPseudoID)
	derived(10, e.PseudoKeyID)
	derived(11, e.IPAnonymized)
	derived(12, e.Geo.CountryCode)
	derived(13, e.Geo.Country)
	derived(14, e.Geo.RegionCode)
	derived(15, e.Geo.Region)
	derived(16, e.Geo.City)
	derived(17, e.Geo.PostalCode)
	derived(18, e.Geo.TimeZone)
	w.f64(19, e.Geo.Latitude, e.Geo.HasLocation)
	w.f64(20, e.Geo.Longitude, e.Geo.HasLocation)
	derived(21, e.UA.Browser)
	derived(22, e.UA.BrowserVersion)
	derived(23, e.UA.OS)
	derived(24, e.UA.OSVersion)
	derived(25, e.UA.DeviceClass)
	w.boolean(26, e.UA.IsBot, e.UA.Known)
	w.str(27, e.Properties, in(pipeline.HasProperties))
	w.str(28, e.Extra, in(pipeline.HasExtra))
	w.str(29, e.EventSchema, in(pipeline.HasEventSchema))
	w.str(30, e.Contexts, in(pipeline.HasContexts))
	derived(31, e.DomainUserPseudoID)
	derived(32, e.NetworkUserPseudoID)
	w.str(33, e.Topic, true)
	w.i32(34, e.Partition)
	w.i64(35, e.Offset)
	w.i32(36, e.Index)
}

// addRejected writes e as a row of the rejected output.
func addRejected(w *fileWriter, e *pipeline.Event) {
	w.str(0, e.Topic, true)
	w.i32(1, e.Partition)
	w.i64(2, e.Offset)
	w.i32(3, e.Index)
	w.i64(4, e.KafkaTime)
	w.str(5, e.RejectStage, true)
	w.str(6, e.RejectReason, true)
	w.str(7, view(e.Raw), true)
}
