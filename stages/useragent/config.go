package useragent

import "fmt"

// Config is the useragent stage's keys in the stage list.
type Config struct {
	// CacheSize bounds the cache of parsed agents, shared by all
	// partitions: entries per generation, two generations. Default 10000.
	CacheSize int `yaml:"cache_size,omitempty"`
}

// Validate reports every problem of c, each naming its key.
func (c Config) Validate() error {
	if c.CacheSize < 0 {
		return fmt.Errorf("cache_size: must not be negative, got %d", c.CacheSize)
	}
	return nil
}
