package parquet

import (
	"unsafe"

	"github.com/sluicedata/sluice/pipeline"
)

// EventRow is one row of the events output. Column names, order and types
// are the contract of DESIGN.md ("Output"): snake_case, timestamps as INT64
// TIMESTAMP(MILLIS, UTC-adjusted), optional strings null when empty.
type EventRow struct {
	EventID          string   `parquet:"event_id"`
	EventName        string   `parquet:"event_name"`
	EventTime        int64    `parquet:"event_time,timestamp(millisecond)"`
	KafkaTime        int64    `parquet:"kafka_time,timestamp(millisecond)"`
	AppID            string   `parquet:"app_id,optional"`
	Platform         string   `parquet:"platform,optional"`
	SessionID        string   `parquet:"session_id,optional"`
	PageURL          string   `parquet:"page_url,optional"`
	PageReferrer     string   `parquet:"page_referrer,optional"`
	UserPseudoID     string   `parquet:"user_pseudo_id,optional"`
	PseudoKeyID      string   `parquet:"pseudo_key_id,optional"`
	IPAnonymized     string   `parquet:"ip_anonymized,optional"`
	GeoCountryCode   string   `parquet:"geo_country_code,optional"`
	GeoCountry       string   `parquet:"geo_country,optional"`
	GeoRegionCode    string   `parquet:"geo_region_code,optional"`
	GeoRegion        string   `parquet:"geo_region,optional"`
	GeoCity          string   `parquet:"geo_city,optional"`
	GeoPostalCode    string   `parquet:"geo_postal_code,optional"`
	GeoTimezone      string   `parquet:"geo_timezone,optional"`
	GeoLatitude      *float64 `parquet:"geo_latitude,optional"`
	GeoLongitude     *float64 `parquet:"geo_longitude,optional"`
	UABrowser        string   `parquet:"ua_browser,optional"`
	UABrowserVersion string   `parquet:"ua_browser_version,optional"`
	UAOS             string   `parquet:"ua_os,optional"`
	UADeviceClass    string   `parquet:"ua_device_class,optional"`
	UAIsBot          *bool    `parquet:"ua_is_bot,optional"`
	Properties       string   `parquet:"properties,optional"`
	Extra            string   `parquet:"extra,optional"`
	SrcTopic         string   `parquet:"src_topic"`
	SrcPartition     int32    `parquet:"src_partition"`
	SrcOffset        int64    `parquet:"src_offset"`
}

// RejectedRow is one row of the rejected output. Raw is the record value
// as plain BYTE_ARRAY (no string annotation: it may not be text).
type RejectedRow struct {
	SrcTopic     string `parquet:"src_topic"`
	SrcPartition int32  `parquet:"src_partition"`
	SrcOffset    int64  `parquet:"src_offset"`
	KafkaTime    int64  `parquet:"kafka_time,timestamp(millisecond)"`
	Stage        string `parquet:"stage"`
	Error        string `parquet:"error"`
	Raw          []byte `parquet:"raw"`
}

// eventRow fills r from e. The raw user id and IP are not columns: they
// cannot leak. Pointers in r point into e, which must outlive the write.
func eventRow(r *EventRow, e *pipeline.Event) {
	*r = EventRow{
		EventID:          e.EventID,
		EventName:        e.EventName,
		EventTime:        e.EventTime,
		KafkaTime:        e.KafkaTime,
		AppID:            e.AppID,
		Platform:         e.Platform,
		SessionID:        e.SessionID,
		PageURL:          e.PageURL,
		PageReferrer:     e.Referrer,
		UserPseudoID:     e.UserPseudoID,
		PseudoKeyID:      e.PseudoKeyID,
		IPAnonymized:     e.IPAnonymized,
		GeoCountryCode:   e.Geo.CountryCode,
		GeoCountry:       e.Geo.Country,
		GeoRegionCode:    e.Geo.RegionCode,
		GeoRegion:        e.Geo.Region,
		GeoCity:          e.Geo.City,
		GeoPostalCode:    e.Geo.PostalCode,
		GeoTimezone:      e.Geo.TimeZone,
		UABrowser:        e.UA.Browser,
		UABrowserVersion: e.UA.BrowserVersion,
		UAOS:             e.UA.OS,
		UADeviceClass:    e.UA.DeviceClass,
		Properties:       e.Properties,
		Extra:            e.Extra,
		SrcTopic:         e.Topic,
		SrcPartition:     e.Partition,
		SrcOffset:        e.Offset,
	}
	if e.Geo.HasLocation {
		r.GeoLatitude = &e.Geo.Latitude
		r.GeoLongitude = &e.Geo.Longitude
	}
	if e.UA.Known {
		r.UAIsBot = &e.UA.IsBot
	}
}

// staged is an event row kept before its file has a writer: values only,
// no pointers into the (reused) batch.
type staged struct {
	row      EventRow // GeoLatitude, GeoLongitude, UAIsBot nil
	lat, lon float64
	hasLoc   bool
	isBot    bool
	hasUA    bool
}

func stageEvent(st *staged, e *pipeline.Event) {
	eventRow(&st.row, e)
	st.row.GeoLatitude, st.row.GeoLongitude, st.row.UAIsBot = nil, nil, nil
	st.lat, st.lon, st.hasLoc = e.Geo.Latitude, e.Geo.Longitude, e.Geo.HasLocation
	st.isBot, st.hasUA = e.UA.IsBot, e.UA.Known
}

// rowOf returns the row of st, its pointers into st.
func (st *staged) rowOf() EventRow {
	r := st.row
	if st.hasLoc {
		r.GeoLatitude, r.GeoLongitude = &st.lat, &st.lon
	}
	if st.hasUA {
		r.UAIsBot = &st.isBot
	}
	return r
}

// stagedSize estimates the memory a staged row holds: the struct and the
// text it keeps alive.
func stagedSize(r *EventRow) int64 {
	n := int64(unsafe.Sizeof(staged{}))
	for _, s := range [...]string{r.EventID, r.EventName, r.AppID, r.Platform, r.SessionID, r.PageURL, r.PageReferrer,
		r.UserPseudoID, r.IPAnonymized, r.Properties, r.Extra} {
		n += int64(len(s))
	}
	return n
}

func rejectedRow(r *RejectedRow, e *pipeline.Event) {
	*r = RejectedRow{
		SrcTopic:     e.Topic,
		SrcPartition: e.Partition,
		SrcOffset:    e.Offset,
		KafkaTime:    e.KafkaTime,
		Stage:        e.RejectStage,
		Error:        e.RejectReason,
		Raw:          e.Raw,
	}
}
