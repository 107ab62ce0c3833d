package dedupe

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"errors"

	"github.com/sluicedata/sluice/config"
)

// Config is the dedupe stage's keys in the stage list.
type Config struct {
	// Key is the field, or comma-separated fields, that identify an event:
	// event_id (default), event_name, session_id, app_id.
	Key string `yaml:"key,omitempty"`
	// Window of Kafka record time. Default 10m.
	Window config.Duration `yaml:"window,omitempty"`
	// MaxEntries bounds each partition's window. Default 1000000.
	MaxEntries int `yaml:"max_entries,omitempty"`
}

// KeyFields returns the key fields (default event_id).
func (c Config) KeyFields() []string {
	if c.Key == "" {
		return []string{"event_id"}
	}
	var out []string
	for k := range strings.SplitSeq(c.Key, ",") {
		out = append(out, strings.TrimSpace(k))
	}
	return out
}

// Validate reports every problem of c, each naming its key.
func (c Config) Validate() error {
	var errs []error
	for _, k := range c.KeyFields() {
		if !slices.Contains(Keys, k) {
			errs = append(errs, fmt.Errorf("key: %q is not %s", k, strings.Join(Keys, ", ")))
		}
	}
	if c.Window != 0 && c.Window.D() < time.Second {
		errs = append(errs, fmt.Errorf("window: must be at least 1s, got %s", c.Window))
	}
	if c.MaxEntries < 0 {
		errs = append(errs, fmt.Errorf("max_entries: must not be negative, got %d", c.MaxEntries))
	}
	return errors.Join(errs...)
}

// Options are the stage options c sets.
func (c Config) Options() Options {
	return Options{Key: c.KeyFields(), Window: c.Window.D(), MaxEntries: c.MaxEntries}
}
