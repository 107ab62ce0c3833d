package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

var typeOfConfig = reflect.TypeOf(Config{})

// yamlFields maps the yaml keys of struct type t to their field index.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

// checkKeys walks a YAML mapping against struct type t and reports every
// key t does not have, with its dotted path and line.
func checkKeys(n *yaml.Node, t reflect.Type, path string) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		if u := reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem(); t.Implements(u) || reflect.PointerTo(t).Implements(u) {
			return nil
		}
		fields := yamlFields(t)
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := join(path, k.Value)
			fi, ok := fields[k.Value]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: unknown key (line %d)", key, k.Line))
				continue
			}
			errs = append(errs, checkKeys(v, t.Field(fi).Type, key)...)
		}
		return errs
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		var errs []error
		for i, c := range n.Content {
			errs = append(errs, checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return errs
	}
	return nil // scalars: type errors come from decoding
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// EnvPrefix starts every override variable.
const EnvPrefix = "SLUICE_"

// EnvKeys lists every overridable key and its variable, in file order:
// SLUICE_ and the dotted key in upper case with "_" for ".", for example
// SLUICE_SINK_ROLL_MAX_AGE for sink.roll.max_age. Lists take comma-separated
// values. The stage list is not overridable.
func EnvKeys() [][2]string {
	var out [][2]string
	walkLeaves(reflect.ValueOf(&Config{}).Elem(), "", func(key string, _ reflect.Value) {
		out = append(out, [2]string{key, envName(key)})
	})
	return out
}

func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// walkLeaves calls fn for every scalar or []string field under v.
func walkLeaves(v reflect.Value, path string, fn func(key string, v reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fv := v.Field(i)
		key := join(path, name)
		switch {
		case fv.Kind() == reflect.Struct:
			walkLeaves(fv, key, fn)
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() != reflect.String:
			// structured lists (stages) come from the file only
		default:
			fn(key, fv)
		}
	}
}

// ApplyEnv applies every SLUICE_* variable of environ that names a key.
// Variables that name no key are left alone: secrets use the same prefix.
func (c *Config) ApplyEnv(environ []string) error {
	env := make(map[string]string)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}
	var errs []error
	walkLeaves(reflect.ValueOf(c).Elem(), "", func(key string, fv reflect.Value) {
		name := envName(key)
		val, ok := env[name]
		if !ok {
			return
		}
		if err := setFromString(fv, val); err != nil {
			errs = append(errs, fmt.Errorf("%s (from %s): %w", key, name, err))
		}
	})
	return errors.Join(errs...)
}

func setFromString(fv reflect.Value, s string) error {
	switch p := fv.Addr().Interface().(type) {
	case *Duration:
		return p.parse(s)
	case *ByteSize:
		return p.parse(s)
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(s)
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		fv.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		fv.SetBool(b)
	case reflect.Slice:
		var items []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		fv.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}
