package licenses

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
)

// TestDependencyLicences: every module linked into the sluice binary has a
// licence file that grants a licence compatible with Apache-2.0. Run with
// -v for the table the README lists.
func TestDependencyLicences(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the module cache")
	}
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(here), "..", "..")
	mods, err := Deps(context.Background(), root, "./cmd/sluice")
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) < 20 {
		t.Fatalf("only %d modules: the listing is broken", len(mods))
	}
	for _, m := range mods {
		t.Logf("%-50s %-36s %s", m.Path, m.Version, m.License)
		if !Compatible[m.License] {
			t.Errorf("%s %s: licence %s is not known to be compatible with Apache-2.0", m.Path, m.Version, m.License)
		}
	}
}

func TestClassify(t *testing.T) {
	for text, want := range map[string]string{
		"Apache License\n Version 2.0, January 2004":                                                                     "Apache-2.0",
		"MIT License\n\nPermission is hereby granted, free of charge, to any person":                                     "MIT",
		"Redistribution and use in source and binary forms, with or without\nmodification... Neither the name of Google": "BSD-3-Clause",
		"Redistribution and use in source and binary forms, with or without modification":                                "BSD-2-Clause",
		"Mozilla Public License Version 2.0":                                                                             "MPL-2.0",
		"GNU GENERAL PUBLIC LICENSE Version 3":                                                                           "GPL",
		"GNU AFFERO GENERAL PUBLIC LICENSE ... Apache License Version 2.0":                                               "AGPL",
		"All rights reserved.": "unknown",
	} {
		if got := classify(text); got != want {
			t.Errorf("classify(%.40q) = %s, want %s", text, got, want)
		}
	}
}
