package testkit

import (
	"path/filepath"
	"testing"

	"github.com/sluicedata/sluice/internal/geodb"
)

// GeoRecord is one network of a test City database.
type GeoRecord = geodb.Record

// GeoNetworks are the known answers of the test database.
var GeoNetworks = geodb.Networks

// GeoDB writes a GeoIP2-City database with records to a temporary file
// and returns its path. buildEpoch tells versions apart in reload tests.
func GeoDB(t testing.TB, records []GeoRecord, buildEpoch int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "GeoIP2-City-Test.mmdb")
	if err := geodb.Write(p, records, buildEpoch); err != nil {
		t.Fatal(err)
	}
	return p
}

// WriteGeoDB writes a GeoIP2-City database with records to path.
func WriteGeoDB(path string, records []GeoRecord, buildEpoch int64) error {
	return geodb.Write(path, records, buildEpoch)
}
