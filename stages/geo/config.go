package geo

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluicedata/sluice/config"
)

// Config is the geo stage's keys in the stage list.
type Config struct {
	// Database is the MaxMind City or Country .mmdb file. Required.
	Database string `yaml:"database,omitempty"`
	// ReloadInterval is how often the file is checked for a replacement.
	// Default 1m.
	ReloadInterval config.Duration `yaml:"reload_interval,omitempty"`
	// AnonymizeIPv4Bits and AnonymizeIPv6Bits are how many low bits of the
	// IP are zeroed in ip_anonymized. Defaults 8 and 80.
	AnonymizeIPv4Bits *int `yaml:"anonymize_ipv4_bits,omitempty"`
	AnonymizeIPv6Bits *int `yaml:"anonymize_ipv6_bits,omitempty"`
}

// Validate reports every problem of c, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.Database == "" {
		errs = append(errs, errors.New("database: the path of a MaxMind City or Country database is required"))
	}
	if c.ReloadInterval != 0 && c.ReloadInterval.D() < time.Second {
		errs = append(errs, fmt.Errorf("reload_interval: must be at least 1s, got %s", c.ReloadInterval))
	}
	if v := c.AnonymizeIPv4Bits; v != nil && (*v < 0 || *v > 32) {
		errs = append(errs, fmt.Errorf("anonymize_ipv4_bits: %d is not in [0, 32]", *v))
	}
	if v := c.AnonymizeIPv6Bits; v != nil && (*v < 0 || *v > 128) {
		errs = append(errs, fmt.Errorf("anonymize_ipv6_bits: %d is not in [0, 128]", *v))
	}
	return errors.Join(errs...)
}

// Interval is ReloadInterval with its default.
func (c Config) Interval() time.Duration {
	if c.ReloadInterval == 0 {
		return time.Minute
	}
	return c.ReloadInterval.D()
}

// Options are the stage options c sets.
func (c Config) Options() Options {
	bits := func(v *int) int {
		switch {
		case v == nil:
			return 0 // default
		case *v == 0:
			return -1 // none
		}
		return *v
	}
	return Options{IPv4Bits: bits(c.AnonymizeIPv4Bits), IPv6Bits: bits(c.AnonymizeIPv6Bits)}
}
