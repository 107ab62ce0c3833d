package main

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sluicedata/sluice/config"
	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/stages/decode"
	"github.com/sluicedata/sluice/stages/dedupe"
	"github.com/sluicedata/sluice/stages/filter"
	"github.com/sluicedata/sluice/stages/geo"
	"github.com/sluicedata/sluice/stages/pseudonymize"
	"github.com/sluicedata/sluice/stages/useragent"
)

// stageTypes is the one table from a stage type of the config to its
// package: the package's Config (its YAML keys and Validate) and how to
// build the stage from it — open what its partitions share and return the
// constructor of one partition's stage. Adding a stage is a package with a
// Config and a constructor, and one entry here.
var stageTypes = map[string]stageType{
	"decode": kind(func(c decode.Config, set *stageSet) (newStage, error) {
		set.decode = &decode.Stats{}
		if c.Snowplow() {
			return func() (pipeline.Stage, error) { return decode.NewSnowplow(set.decode), nil }, nil
		}
		return func() (pipeline.Stage, error) { return decode.New(set.decode), nil }, nil
	}),
	"geo": kind(func(c geo.Config, set *stageSet) (newStage, error) {
		db, err := geo.Open(c.Database, set.log)
		if err != nil {
			return nil, fmt.Errorf("database: %w", err)
		}
		set.geo, set.geoInterval = db, c.Interval()
		return func() (pipeline.Stage, error) { return geo.New(db, c.Options()) }, nil
	}),
	"useragent": kind(func(c useragent.Config, set *stageSet) (newStage, error) {
		set.ua = useragent.NewCache(c.CacheSize)
		return func() (pipeline.Stage, error) { return useragent.New(set.ua) }, nil
	}),
	"pseudonymize": kind(func(c pseudonymize.Config, set *stageSet) (newStage, error) {
		specs, active := c.Sources()
		keys, err := pseudonymize.LoadKeys(specs, set.lookupEnv, nil)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		if c.CacheSize != 0 {
			set.log.Warn("pseudonymize: cache_size is deprecated and ignored (pseudonyms are computed for every value)", "cache_size", c.CacheSize)
		}
		o := pseudonymize.Options{Keys: keys, Active: active, Fields: c.Fields}
		if _, err := pseudonymize.New(o); err != nil {
			return nil, err
		}
		return func() (pipeline.Stage, error) { return pseudonymize.New(o) }, nil
	}),
	"dedupe": kind(func(c dedupe.Config, set *stageSet) (newStage, error) {
		set.dedupe = &dedupe.Stats{}
		return func() (pipeline.Stage, error) { return dedupe.New(c.Options(), set.dedupe) }, nil
	}),
	"filter": kind(func(c filter.Config, set *stageSet) (newStage, error) {
		set.filter = &filter.Stats{}
		return func() (pipeline.Stage, error) { return filter.New(c, set.filter) }, nil
	}),
}

// stageType is an entry of stageTypes.
type stageType struct {
	// check reads and validates an entry's keys.
	check func(st config.Stage) error
	// build checks them and builds the stage.
	build func(st config.Stage, set *stageSet) (newStage, error)
}

// kind makes the entry of a stage whose package has the Config C.
func kind[C interface{ Validate() error }](build func(c C, set *stageSet) (newStage, error)) stageType {
	read := func(st config.Stage) (C, error) {
		var c C
		if err := st.Decode(&c); err != nil {
			return c, err
		}
		return c, c.Validate()
	}
	return stageType{
		check: func(st config.Stage) error { _, err := read(st); return err },
		build: func(st config.Stage, set *stageSet) (newStage, error) {
			c, err := read(st)
			if err != nil {
				return nil, err
			}
			return build(c, set)
		},
	}
}

// checkStages reports every problem of the stage entries' types and keys,
// each naming its key (stages[i].…), without opening anything.
func checkStages(stages []config.Stage) error {
	var errs []error
	for i, st := range stages {
		key := fmt.Sprintf("stages[%d]", i)
		t, ok := stageTypes[st.Type]
		if !ok {
			if st.Type != "" {
				errs = append(errs, fmt.Errorf("%s.type: %q is not a stage type (%s)", key, st.Type, strings.Join(stageTypeNames(), ", ")))
			}
			continue
		}
		if err := t.check(st); err != nil {
			errs = append(errs, prefixed(key, err)...)
			continue
		}
		// A filter of bots needs the user agents parsed first.
		if st.Type == "filter" {
			var c filter.Config
			if st.Decode(&c) == nil && c.DropBots && !slices.ContainsFunc(stages[:i], func(s config.Stage) bool { return s.Type == "useragent" }) {
				errs = append(errs, fmt.Errorf("%s.drop_bots: needs the useragent stage before the filter", key))
			}
		}
	}
	return errors.Join(errs...)
}

// newStage makes the stage of one partition.
type newStage func() (pipeline.Stage, error)

// stageSet is the configured stage chain with what its stages share
// across partitions (the GeoIP database and its reload watcher, caches,
// counters for metrics).
type stageSet struct {
	factory     pipeline.StageFactory
	log         *slog.Logger
	lookupEnv   func(string) (string, bool)
	geo         *geo.Database
	geoInterval time.Duration
	ua          *useragent.Cache
	dedupe      *dedupe.Stats
	decode      *decode.Stats
	filter      *filter.Stats
}

// buildStages opens everything the configured stages need. Every problem
// — an unknown type or key, a bad value, a missing or corrupt GeoIP
// database, a missing key — is reported at once, each naming its key
// (stages[i].…). lookupEnv resolves key variables (os.LookupEnv outside
// tests and demo).
func buildStages(cfg config.Config, log *slog.Logger, lookupEnv func(string) (string, bool)) (*stageSet, error) {
	set := &stageSet{log: log, lookupEnv: lookupEnv}
	var errs []error
	news := make([]newStage, len(cfg.Stages))
	for i, st := range cfg.Stages {
		key := fmt.Sprintf("stages[%d]", i)
		t, ok := stageTypes[st.Type]
		if !ok {
			errs = append(errs, fmt.Errorf("%s.type: %q is not a stage type (%s)", key, st.Type, strings.Join(stageTypeNames(), ", ")))
			continue
		}
		n, err := t.build(st, set)
		if err != nil {
			errs = append(errs, prefixed(key, err)...)
			continue
		}
		news[i] = n
	}
	if err := errors.Join(errs...); err != nil {
		set.close()
		return nil, err
	}
	set.factory = func(topic string, partition int32) ([]pipeline.Stage, error) {
		out := make([]pipeline.Stage, 0, len(news))
		for _, n := range news {
			s, err := n()
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	return set, nil
}

// stageTypeNames lists the stage types, sorted.
func stageTypeNames() []string { return slices.Sorted(maps.Keys(stageTypes)) }

// prefixed prefixes each of the (joined) errors of err with key, so that
// "database: required" becomes "stages[1].database: required".
func prefixed(key string, err error) []error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			errs = append(errs, prefixed(key, e)...)
		}
		return errs
	}
	return []error{fmt.Errorf("%s.%w", key, err)}
}

// start runs the GeoIP reload watcher in lc (until its context ends) and
// registers the release of the shared resources, after the watcher.
func (s *stageSet) start(lc *lifecycle) {
	if s.geo != nil {
		lc.Go(func() { s.geo.Watch(lc.ctx, s.geoInterval) })
	}
	lc.OnClose(s.close)
}

// close releases the shared resources (the GeoIP mapping); nothing may
// use the stages any more.
func (s *stageSet) close() {
	if s.geo != nil {
		s.geo.Close()
	}
}
