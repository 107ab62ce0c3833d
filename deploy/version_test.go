package deploy

import (
	"os"
	"regexp"
	"testing"
)

// TestVersionsAgree: the base version of the Makefile, the newest release
// of CHANGELOG.md and the Helm chart's appVersion are one version, so the
// image, the chart and `sluice version` name the same release.
func TestVersionsAgree(t *testing.T) {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	find := func(what, text, pattern string) string {
		m := regexp.MustCompile(pattern).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("%s: no match for %s", what, pattern)
		}
		return m[1]
	}
	base := find("Makefile", read("../Makefile"), `(?m)^BASE_VERSION := (\S+)$`)
	release := find("CHANGELOG.md", read("../CHANGELOG.md"), `(?m)^## \[(\d+\.\d+\.\d+)\]`)
	app := find("Chart.yaml", read("helm/sluice/Chart.yaml"), `(?m)^appVersion: "?([^"\s]+)"?$`)
	if base != release || app != release {
		t.Errorf("Makefile BASE_VERSION %s, CHANGELOG newest release %s, chart appVersion %s: want one version", base, release, app)
	}
}
