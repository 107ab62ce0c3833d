// Package geodb writes GeoIP2-City databases with known answers (with
// github.com/maxmind/mmdbwriter) for the tests and the demo. Its networks
// and places are test data, not real locations.
package geodb

import (
	"fmt"
	"net"
	"os"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/sluicedata/sluice/internal/synth"
)

// Record is one network of a test City database.
type Record struct {
	Network     string // CIDR
	CountryCode string
	Country     string
	RegionCode  string
	Region      string
	City        string
	Postal      string
	TimeZone    string
	Lat, Lon    float64
}

// Networks are the known answers of the test database. The synthetic
// generator's addresses fall in these networks (and in 2001:db8::/32).
var Networks = []Record{
	{"81.2.0.0/16", "GB", "United Kingdom", "ENG", "England", "London", "EC1A", "Europe/London", 51.5142, -0.0931},
	{"81.3.0.0/16", "GB", "United Kingdom", "SCT", "Scotland", "Edinburgh", "EH1", "Europe/London", 55.9533, -3.1883},
	{"92.184.0.0/16", "FR", "France", "IDF", "Île-de-France", "Paris", "75001", "Europe/Paris", 48.8566, 2.3522},
	{"151.101.0.0/16", "US", "United States", "CA", "California", "San Francisco", "94107", "America/Los_Angeles", 37.7749, -122.4194},
	{"185.199.0.0/16", "DE", "Germany", "BE", "Berlin", "Berlin", "10115", "Europe/Berlin", 52.52, 13.405},
	{"203.0.0.0/16", "AU", "Australia", "NSW", "New South Wales", "Sydney", "2000", "Australia/Sydney", -33.8688, 151.2093},
	{"198.51.0.0/16", "BR", "Brazil", "SP", "São Paulo", "São Paulo", "01000", "America/Sao_Paulo", -23.5505, -46.6333},
	{"46.101.0.0/16", "NL", "Netherlands", "NH", "North Holland", "Amsterdam", "1012", "Europe/Amsterdam", 52.3676, 4.9041},
	{"89.160.0.0/16", "SE", "Sweden", "AB", "Stockholm County", "Stockholm", "111 20", "Europe/Stockholm", 59.3293, 18.0686},
	{"104.16.0.0/16", "CA", "Canada", "ON", "Ontario", "Toronto", "M5H", "America/Toronto", 43.6532, -79.3832},
	{"2.16.0.0/16", "JP", "Japan", "13", "Tokyo", "Tokyo", "100-0001", "Asia/Tokyo", 35.6762, 139.6503},
	// A record at latitude 0: a valid place, not a null.
	{"5.9.0.0/16", "GH", "Ghana", "", "", "", "", "Africa/Accra", 0, 0},
	{"2001:db8::/32", "IE", "Ireland", "L", "Leinster", "Dublin", "D02", "Europe/Dublin", 53.3498, -6.2603},
}

// ReferenceRecords is a City database of the reference workload's
// networks (synth.ReferenceNetworks, as /24s) with Networks' places in
// turn, plus the IPv6 test range.
func ReferenceRecords(nets []string) []Record {
	out := make([]Record, 0, len(nets)+1)
	for i, n := range nets {
		r := Networks[i%(len(Networks)-1)]
		r.Network = n + ".0/24"
		out = append(out, r)
	}
	return append(out, Networks[len(Networks)-1])
}

// Write writes a GeoIP2-City database with records to path.
func Write(path string, records []Record, buildEpoch int64) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "GeoIP2-City",
		IncludeReservedNetworks: true, // documentation ranges are test data
		RecordSize:              28,
		IPVersion:               6,
		BuildEpoch:              buildEpoch,
		Languages:               []string{"en"},
		Description:             map[string]string{"en": "sluice test database"},
	})
	if err != nil {
		return err
	}
	names := func(s string) mmdbtype.Map {
		return mmdbtype.Map{"en": mmdbtype.String(s), "de": mmdbtype.String(s + " (de)")}
	}
	for _, r := range records {
		_, network, err := net.ParseCIDR(r.Network)
		if err != nil {
			return err
		}
		rec := mmdbtype.Map{
			"country":            mmdbtype.Map{"iso_code": mmdbtype.String(r.CountryCode), "names": names(r.Country)},
			"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String("ZZ"), "names": names("Registered Elsewhere")},
			"location": mmdbtype.Map{
				"latitude": mmdbtype.Float64(r.Lat), "longitude": mmdbtype.Float64(r.Lon),
				"time_zone": mmdbtype.String(r.TimeZone), "accuracy_radius": mmdbtype.Uint16(20),
			},
		}
		if r.City != "" {
			rec["city"] = mmdbtype.Map{"names": names(r.City)}
		}
		if r.Postal != "" {
			rec["postal"] = mmdbtype.Map{"code": mmdbtype.String(r.Postal)}
		}
		if r.RegionCode != "" {
			rec["subdivisions"] = mmdbtype.Slice{
				mmdbtype.Map{"iso_code": mmdbtype.String(r.RegionCode), "names": names(r.Region)},
				mmdbtype.Map{"iso_code": mmdbtype.String("SUB2"), "names": names("Second level")},
			}
		}
		if err := tree.Insert(network, rec); err != nil {
			return fmt.Errorf("insert %s: %w", r.Network, err)
		}
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := tree.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// TrackerRecords is the City database of the tracker workload
// (synth.TrackerNetworks with their places).
func TrackerRecords() []Record {
	places := synth.TrackerPlaces()
	nets := synth.TrackerNetworks()
	out := make([]Record, len(nets))
	for i, n := range nets {
		p := places[n.Place]
		out[i] = Record{Network: n.Prefix.String(), CountryCode: p.CountryCode, Country: p.Country, RegionCode: p.RegionCode,
			Region: p.Region, City: p.City, Postal: p.Postal, TimeZone: p.TimeZone, Lat: p.Lat, Lon: p.Lon}
	}
	return out
}
