package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sluicedata/sluice/config"
)

// loadConfig loads and validates the config file with the environment's
// overrides; the error lists every problem, one per line.
func loadConfig(path string) (config.Config, error) {
	return loadChecked(path, validateConfig)
}

// loadChecked loads the config at path (SLUICE_* overrides applied) and
// checks it with check: the sections the command reads, every problem
// listed.
func loadChecked(path string, check func(config.Config) error) (config.Config, error) {
	if path == "" {
		return config.Config{}, &exitError{2, errors.New("--config is required")}
	}
	cfg, err := config.Load(path, os.Environ())
	if err == nil {
		err = check(cfg)
	}
	if err != nil {
		return cfg, &exitError{2, fmt.Errorf("invalid configuration:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))}
	}
	return cfg, nil
}

// validateConfig reports every problem of cfg: its sections' and its
// stages' (each stage's keys by its package's Config).
func validateConfig(cfg config.Config) error {
	return errors.Join(cfg.Validate(), checkStages(cfg.Stages))
}

func cmdValidate(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	path := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	// Open what the stages need (GeoIP database, keys) so that a missing
	// file or variable shows here, not at the first deploy.
	stages, err := buildStages(cfg, nil, os.LookupEnv)
	if err != nil {
		return &exitError{2, fmt.Errorf("invalid configuration:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))}
	}
	stages.close()
	fmt.Fprintf(out, "%s: OK\n", *path)
	return nil
}
