package useragent

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sluicedata/sluice/pipeline"
)

// The agreement of the useragent stage with uap-core's reference parser,
// on uap-core's own test corpus (../shared/testdata/uap-core: 17,816
// distinct real user-agent strings). Browser and OS families are compared
// with the corpus's own labels (test_ua.yaml, test_os.yaml), crawler recall
// over the strings test_device.yaml labels Spider; false bots are counted
// over every distinct string whose browser family, by uap-core's
// regexes, is a common browser. The floors are the issue's.

type uapCase struct {
	UA     string `yaml:"user_agent_string"`
	Family string `yaml:"family"`
}

func uapCorpus(t *testing.T, name string) []uapCase {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(here), "..", "..", "..", "shared", "testdata", "uap-core", name)
	b, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("SLUICE_REQUIRE_TOOLS") != "" {
			t.Fatalf("uap-core corpus: %v", err)
		}
		t.Skipf("uap-core corpus not beside the repository: %v", err)
	}
	var f struct {
		Cases []uapCase `yaml:"test_cases"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.Cases
}

// commonBrowsers are the families the browser figures are taken over.
var commonBrowsers = map[string]bool{
	"Chrome": true, "Chrome Mobile": true, "Chrome Mobile iOS": true, "Chrome Mobile WebView": true,
	"Firefox": true, "Firefox Mobile": true, "Firefox iOS": true, "Safari": true, "Mobile Safari": true,
	"Mobile Safari UI/WKWebView": true, "Edge": true, "Edge Mobile": true, "Opera": true, "Opera Mobile": true,
	"Samsung Internet": true,
}

// commonOS are the OS families the OS figure is taken over.
var commonOS = map[string]bool{"Windows": true, "Mac OS X": true, "iOS": true, "Android": true, "Linux": true}

func share(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

func TestAgreementWithUAPCore(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the uap-core corpus")
	}
	files := map[string][]uapCase{}
	seen := map[string]bool{}
	var distinct []string
	for _, name := range []string{"test_ua.yaml", "test_os.yaml", "test_device.yaml"} {
		files[name] = uapCorpus(t, name)
		for _, c := range files[name] {
			if !seen[c.UA] {
				seen[c.UA] = true
				distinct = append(distinct, c.UA)
			}
		}
	}
	// Parse every distinct string once, on every core (a miss is ~1 ms).
	out := make([]pipeline.UserAgent, len(distinct))
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(distinct); i += workers {
				out[i] = Parse(distinct[i])
			}
		})
	}
	wg.Wait()
	parsed := make(map[string]pipeline.UserAgent, len(distinct))
	for i, s := range distinct {
		parsed[s] = out[i]
	}

	var spiders, caught int
	spider := map[string]bool{}
	for _, c := range files["test_device.yaml"] {
		if c.Family == "Spider" {
			spider[c.UA] = true
			spiders++
			if parsed[c.UA].IsBot {
				caught++
			}
		}
	}
	var humans, falseBots int
	for _, s := range distinct {
		// ua_browser is uap-core's family: the reference's label.
		if spider[s] || !commonBrowsers[parsed[s].Browser] {
			continue
		}
		humans++
		if parsed[s].IsBot {
			falseBots++
			t.Logf("marked a bot: %s", s)
		}
	}
	var browsers, agree int
	for _, c := range files["test_ua.yaml"] {
		if commonBrowsers[c.Family] {
			browsers++
			if parsed[c.UA].Browser == c.Family {
				agree++
			}
		}
	}
	var osCases, osAgree int
	for _, c := range files["test_os.yaml"] {
		if commonOS[c.Family] {
			osCases++
			if parsed[c.UA].OS == c.Family {
				osAgree++
			}
		}
	}
	recall, falseRate := share(caught, spiders), share(falseBots, humans)
	browserRate, osRate := share(agree, browsers), share(osAgree, osCases)
	t.Logf("%d distinct strings: crawler recall %.1f%% (%d of %d Spider strings); false bots %.2f%% (%d of %d common-browser strings); "+
		"browser family %.1f%% (%d of %d); OS family %.1f%% (%d of %d)",
		len(distinct), recall, caught, spiders, falseRate, falseBots, humans, browserRate, agree, browsers, osRate, osAgree, osCases)
	if recall < 98 || falseRate > 0.5 || browserRate < 97 || osRate < 97 {
		t.Errorf("below the floors (recall ≥ 98%%, false bots ≤ 0.5%%, browser and OS family ≥ 97%%): %.1f%%, %.2f%%, %.1f%%, %.1f%%",
			recall, falseRate, browserRate, osRate)
	}
}
