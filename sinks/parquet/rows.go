package parquet

import (
	"github.com/sluicedata/sluice/pipeline"
)

// EventRow is one row of the events output. Column names, order and types
// are the contract of DESIGN.md ("Output"): snake_case, timestamps as INT64
// TIMESTAMP(MILLIS, UTC-adjusted). Every optional column is a pointer, nil
// exactly when the column is NULL: the NULL rule is sluice's (eventRow),
// never a library's treatment of zero values.
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

// RejectedRow is one row of the rejected output. Raw is the record value
// as plain BYTE_ARRAY (no string annotation: it may not be text).
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

// eventRow fills r from e, applying the NULL rule of pipeline.Event: input
// text is NULL when the input had no value ("" is a value), derived text
// when it is "". The raw user id and IP are not columns: they cannot leak.
// Pointers in r point into e, which must outlive the write.
func eventRow(r *EventRow, e *pipeline.Event) {
	input := func(f pipeline.Fields, s *string) *string {
		if e.Present&f == 0 {
			return nil
		}
		return s
	}
	*r = EventRow{
		EventID:           e.EventID,
		EventName:         e.EventName,
		EventTime:         e.EventTime,
		KafkaTime:         e.KafkaTime,
		AppID:             input(pipeline.HasAppID, &e.AppID),
		Platform:          input(pipeline.HasPlatform, &e.Platform),
		SessionID:         input(pipeline.HasSessionID, &e.SessionID),
		PageURL:           input(pipeline.HasPageURL, &e.PageURL),
		PageReferrer:      input(pipeline.HasReferrer, &e.Referrer),
		UserPseudoID:      derived(&e.UserPseudoID),
		PseudoKeyID:       derived(&e.PseudoKeyID),
		IPAnonymized:      derived(&e.IPAnonymized),
		GeoCountryCode:    derived(&e.Geo.CountryCode),
		GeoCountry:        derived(&e.Geo.Country),
		GeoRegionCode:     derived(&e.Geo.RegionCode),
		GeoRegion:         derived(&e.Geo.Region),
		GeoCity:           derived(&e.Geo.City),
		GeoPostalCode:     derived(&e.Geo.PostalCode),
		GeoTimezone:       derived(&e.Geo.TimeZone),
		UABrowser:         derived(&e.UA.Browser),
		UABrowserVersion:  derived(&e.UA.BrowserVersion),
		UAOS:              derived(&e.UA.OS),
		UAOSVersion:       derived(&e.UA.OSVersion),
		UADeviceClass:     derived(&e.UA.DeviceClass),
		Properties:        input(pipeline.HasProperties, &e.Properties),
		Extra:             input(pipeline.HasExtra, &e.Extra),
		EventSchema:       input(pipeline.HasEventSchema, &e.EventSchema),
		Contexts:          input(pipeline.HasContexts, &e.Contexts),
		DomainUserPseudo:  derived(&e.DomainUserPseudoID),
		NetworkUserPseudo: derived(&e.NetworkUserPseudoID),
		SrcTopic:          e.Topic,
		SrcPartition:      e.Partition,
		SrcOffset:         e.Offset,
		SrcIndex:          e.Index,
	}
	if e.Geo.HasLocation {
		r.GeoLatitude = &e.Geo.Latitude
		r.GeoLongitude = &e.Geo.Longitude
	}
	if e.UA.Known {
		r.UAIsBot = &e.UA.IsBot
	}
}

// derived is a derived column's value: NULL when the derivation gave none.
func derived(s *string) *string {
	if *s == "" {
		return nil
	}
	return s
}

func rejectedRow(r *RejectedRow, e *pipeline.Event) {
	*r = RejectedRow{
		SrcTopic:     e.Topic,
		SrcPartition: e.Partition,
		SrcOffset:    e.Offset,
		SrcIndex:     e.Index,
		KafkaTime:    e.KafkaTime,
		Stage:        e.RejectStage,
		Error:        e.RejectReason,
		Raw:          e.Raw,
	}
}
