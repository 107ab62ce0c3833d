package decode

import (
	"errors"
	"fmt"
)

// Config is the decode stage's keys in the stage list.
type Config struct {
	// Format of the record values: json (default; sluice's JSON events,
	// DESIGN.md "Input events") or snowplow (the Snowplow collector's raw
	// stream: Thrift CollectorPayload records, one or many events each).
	Format string `yaml:"format"`
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	switch c.Format {
	case "", "json", "snowplow":
		return nil
	}
	return errors.Join(fmt.Errorf("format: %q is not json or snowplow", c.Format))
}

// Snowplow tells whether c reads the Snowplow raw stream.
func (c Config) Snowplow() bool { return c.Format == "snowplow" }
