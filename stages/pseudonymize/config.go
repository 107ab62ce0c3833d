package pseudonymize

import (
	"errors"
	"fmt"
	"strings"
)

// Config is the pseudonymize stage's keys in the stage list. A key comes
// from an environment variable or a file, never from the config itself:
// one key by KeyEnv or KeyFile with KeyID, or several in Keys with
// ActiveKey naming the one in use (rotation). No default key.
type Config struct {
	KeyEnv    string    `yaml:"key_env,omitempty"`
	KeyFile   string    `yaml:"key_file,omitempty"`
	KeyID     string    `yaml:"key_id,omitempty"`
	Keys      []KeySpec `yaml:"keys,omitempty"`
	ActiveKey string    `yaml:"active_key,omitempty"`
	// Fields are more fields pseudonymized in place: session_id or
	// properties.NAME. Default none.
	Fields []string `yaml:"fields,omitempty"`
	// CacheSize is deprecated and ignored: it bounded a cache of
	// pseudonyms, which are now computed for every value (faster than the
	// shared cache's lookups). Still accepted, so that existing configs
	// keep starting; sluice logs a warning when it is set.
	CacheSize int `yaml:"cache_size,omitempty"`
}

// Sources returns the keys of c as KeySpecs (the single-key shorthand or
// the list) and the id of the active one.
func (c Config) Sources() ([]KeySpec, string) {
	if c.KeyEnv != "" || c.KeyFile != "" {
		return []KeySpec{{ID: c.KeyID, Env: c.KeyEnv, File: c.KeyFile}}, c.KeyID
	}
	return c.Keys, c.ActiveKey
}

// Validate reports every problem of c, each naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(k, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", k, fmt.Sprintf(format, args...)))
	}
	single := c.KeyEnv != "" || c.KeyFile != "" || c.KeyID != ""
	switch {
	case single && (len(c.Keys) > 0 || c.ActiveKey != ""):
		bad("keys", "use either key_env/key_file with key_id, or keys with active_key, not both")
	case single:
		if (c.KeyEnv == "") == (c.KeyFile == "") {
			bad("key_env", "set exactly one of key_env and key_file")
		}
		if c.KeyID == "" {
			bad("key_id", "a key id is required (it is written to pseudo_key_id)")
		}
	case len(c.Keys) == 0:
		bad("key_env", "a key is required: key_env or key_file with key_id, or keys with active_key (no default key outside sluice demo)")
	default:
		ids := map[string]bool{}
		for i, k := range c.Keys {
			kk := fmt.Sprintf("keys[%d]", i)
			if k.ID == "" {
				bad(kk+".id", "required")
			} else if ids[k.ID] {
				bad(kk+".id", "%q is configured twice", k.ID)
			}
			ids[k.ID] = true
			if (k.Env == "") == (k.File == "") {
				bad(kk, "set exactly one of env and file")
			}
		}
		if !ids[c.ActiveKey] {
			bad("active_key", "%q is not the id of a configured key", c.ActiveKey)
		}
	}
	for i, f := range c.Fields {
		if f != "session_id" && !(strings.HasPrefix(f, "properties.") && len(f) > len("properties.")) {
			bad(fmt.Sprintf("fields[%d]", i), "%q: want session_id or properties.NAME", f)
		}
	}
	if c.CacheSize < 0 {
		bad("cache_size", "must not be negative, got %d", c.CacheSize)
	}
	return errors.Join(errs...)
}
