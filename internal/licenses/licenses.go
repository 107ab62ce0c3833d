// Package licenses finds the licence of every Go module linked into a
// package, from the licence files in the module cache, so that a test can
// hold every dependency of the sluice binary compatible with sluice's own
// licence (Apache-2.0).
package licenses

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Module is one dependency and its licence.
type Module struct {
	Path, Version string
	// License is an SPDX identifier ("Apache-2.0", "MIT", "BSD-3-Clause",
	// …), or "unknown" when no licence file was recognised.
	License string
	// File is the licence file it was read from (relative to the module).
	File string
}

// Compatible are the licences whose code may be linked into an Apache-2.0
// binary and distributed under it: permissive ones, and MPL-2.0 (file-level
// copyleft: its files stay under MPL-2.0, unmodified here).
var Compatible = map[string]bool{
	"Apache-2.0": true, "MIT": true, "BSD-2-Clause": true, "BSD-3-Clause": true,
	"ISC": true, "MPL-2.0": true, "Unlicense": true, "CC0-1.0": true, "Zlib": true,
}

// Deps lists the modules (other than the main one) of the packages pkgs
// and their dependencies, as `go list -deps` in dir resolves them.
func Deps(ctx context.Context, dir string, pkgs ...string) ([]Module, error) {
	args := append([]string{"list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{.Path}}\t{{.Version}}\t{{.Dir}}{{end}}{{end}}"}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	seen := map[string]bool{}
	var mods []Module
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 || seen[f[0]] {
			continue
		}
		seen[f[0]] = true
		m := Module{Path: f[0], Version: f[1], License: "unknown"}
		m.License, m.File = Identify(f[2])
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	return mods, sc.Err()
}

// licenseFile matches LICENSE, LICENSE.md, COPYING, LICENSE-MIT, …; a
// README is read last, for modules that state their licence only there.
var licenseFile = regexp.MustCompile(`(?i)^((licen[cs]e|copying)([-._][a-z0-9-]+)?(\.(md|txt|rst))?|readme(\.(md|txt|rst))?)$`)

// Identify reads the licence files at the root of a module directory and
// returns the licence they grant and the file it was read from.
func Identify(dir string) (string, string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "unknown", ""
	}
	// Licence files before READMEs.
	sort.SliceStable(entries, func(i, j int) bool {
		return !strings.HasPrefix(strings.ToLower(entries[i].Name()), "readme") &&
			strings.HasPrefix(strings.ToLower(entries[j].Name()), "readme")
	})
	for _, e := range entries {
		if e.IsDir() || !licenseFile.MatchString(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if id := classify(string(b)); id != "unknown" {
			return id, e.Name()
		}
	}
	return "unknown", ""
}

// classify names the licence of a licence text by its distinctive
// sentences. Copyleft licences are recognised first, so that a file that
// mentions several is not taken for the permissive one.
func classify(text string) string {
	t := strings.Join(strings.Fields(text), " ")
	has := func(s string) bool { return strings.Contains(t, s) }
	switch {
	case has("GNU AFFERO GENERAL PUBLIC LICENSE"):
		return "AGPL"
	case has("GNU LESSER GENERAL PUBLIC LICENSE"):
		return "LGPL"
	case has("GNU GENERAL PUBLIC LICENSE"):
		return "GPL"
	case has("Server Side Public License"), has("Business Source License"), has("Commons Clause"):
		return "non-free"
	case has("Apache License") && (has("Version 2.0") || has("version 2.0")):
		return "Apache-2.0"
	case has("Mozilla Public License") && has("2.0"):
		return "MPL-2.0"
	case has("Permission is hereby granted, free of charge"):
		return "MIT"
	case has("Redistribution and use in source and binary forms"):
		if has("Neither the name") || has("may be used to endorse or promote") {
			return "BSD-3-Clause"
		}
		return "BSD-2-Clause"
	case has("Permission to use, copy, modify, and/or distribute this software for any purpose"),
		has("Permission to use, copy, modify, and distribute this software for any purpose"):
		return "ISC"
	case has("This is free and unencumbered software released into the public domain"):
		return "Unlicense"
	case has("CC0 1.0 Universal"):
		return "CC0-1.0"
	case has("This software is provided 'as-is', without any express or implied warranty"):
		return "Zlib"
	}
	return "unknown"
}
