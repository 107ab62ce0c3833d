// Package useragent is the user-agent stage: github.com/mssola/useragent
// behind a bounded cache shared by every partition, since user agents
// repeat heavily. A cache hit does not allocate.
package useragent

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/mssola/useragent"
	"github.com/ua-parser/uap-go/uaparser"
	"gopkg.in/yaml.v3"

	"github.com/sluicedata/sluice/internal/cache"
	"github.com/sluicedata/sluice/pipeline"
)

// StageName is the name of this stage.
const StageName = "useragent"

// Device classes.
const (
	Desktop = "desktop"
	Mobile  = "mobile"
	Tablet  = "tablet"
	Bot     = "bot"
)

// uap is uap-core's parser (github.com/ua-parser/uap-go with the regexes
// uap-core maintains): the browser and OS families of the columns are
// uap-core's vocabulary, and its device rule family Spider is a maintained
// list of crawlers. A string is a Spider when the first device rule that
// matches it is a Spider rule; brand and model are not columns, so the
// device rules are split: spiders holds only the Spider rules (a cheap
// first test), devices all of them (run only when spiders matched, to see
// whether a brand rule comes first, as for "CUBOT" phones). Built once,
// safe for concurrent use; results are cached by Cache.
type uap struct {
	spiders, devices *uaparser.Parser
}

var families = sync.OnceValue(func() uap {
	var def uaparser.RegexDefinitions
	if err := yaml.Unmarshal(uaparser.DefinitionYaml, &def); err != nil {
		panic(fmt.Sprintf("useragent: uap-core regexes: %v", err))
	}
	all := def.Device
	var spider = def.Device[:0:0]
	for _, d := range all {
		if d.DeviceReplacement == "Spider" {
			spider = append(spider, d)
		}
	}
	parser := func(d uaparser.RegexDefinitions) *uaparser.Parser {
		p, err := uaparser.New(uaparser.WithRegexDefinitions(d), uaparser.WithCacheSize(1))
		if err != nil {
			panic(fmt.Sprintf("useragent: uap-core regexes: %v", err))
		}
		return p
	}
	return uap{
		spiders: parser(uaparser.RegexDefinitions{UA: def.UA, OS: def.OS, Device: spider}),
		devices: parser(uaparser.RegexDefinitions{Device: all}),
	}
})

// isSpider tells whether uap-core's device rules call s a Spider.
func (u uap) isSpider(s string) bool {
	return u.spiders.ParseDevice(s).Family == "Spider" && u.devices.ParseDevice(s).Family == "Spider"
}

// Parse parses one user-agent string (no cache): browser and OS family
// and version in uap-core's vocabulary, device class and bot flag from
// uap-core's crawler list, mssola/useragent and sluice's own list of
// automated clients.
func Parse(s string) pipeline.UserAgent {
	u := families()
	m := useragent.New(s)
	b, o := u.spiders.ParseUserAgent(s), u.spiders.ParseOs(s)
	out := pipeline.UserAgent{
		Browser:        family(b.Family),
		BrowserVersion: version(b.Major, b.Minor, b.Patch),
		OS:             family(o.Family),
		OSVersion:      version(o.Major, o.Minor, o.Patch),
		IsBot:          u.isSpider(s) || m.Bot() || looksAutomated(s),
		Known:          true,
	}
	if out.BrowserVersion != "" && out.Browser == "" {
		out.BrowserVersion = ""
	}
	if out.OSVersion != "" && out.OS == "" {
		out.OSVersion = ""
	}
	switch {
	case out.IsBot:
		out.DeviceClass = Bot
	case isTablet(s):
		out.DeviceClass = Tablet
	case m.Mobile() || out.OS == "iOS" || out.OS == "Android":
		out.DeviceClass = Mobile
	default:
		out.DeviceClass = Desktop
	}
	return out
}

// family is a uap-core family, "" for its "Other" (nothing recognised).
func family(f string) string {
	if f == "Other" {
		return ""
	}
	return f
}

// version joins the version parts given ("124.0.6367", "17.4", "10").
func version(parts ...string) string {
	v := ""
	for _, p := range parts {
		if p == "" {
			break
		}
		if v != "" {
			v += "."
		}
		v += p
	}
	return v
}

// isTablet: an iPad or Kindle, a device that says Tablet, or Android
// without "Mobile" (Android tablets leave it out of their browsers'
// agents, phones keep it).
func isTablet(s string) bool {
	l := strings.ToLower(s)
	switch {
	case strings.Contains(l, "ipad"), strings.Contains(l, "kindle"), strings.Contains(l, "silk/"):
		return true
	case strings.Contains(l, "tablet"):
		return true
	case strings.Contains(l, "android") && !strings.Contains(l, "mobile"):
		return true
	}
	return false
}

// automated are substrings (lower case) of agents that are not people
// and that neither uap-core's crawler list nor mssola/useragent flag:
// HTTP libraries, command-line tools, headless browsers, uptime monitors
// and link previewers.
var automated = []string{
	"curl/", "wget/", "python-requests", "python-urllib", "go-http-client", "libwww-perl",
	"apache-httpclient", "okhttp/", "axios/", "node-fetch", "scrapy", "headlesschrome", "phantomjs",
	"crawler", "spider", "slurp", "facebookexternalhit", "bot/", "bot;", "-bot", "_bot",
	"pingdom", "uptimerobot", "statuscake", "site24x7", "catchpoint", "webpagetest", "gtmetrix",
	"lighthouse", "chrome-lighthouse", "google-inspectiontool", "bingpreview", "preview", "monitor",
}

func looksAutomated(s string) bool {
	l := strings.ToLower(s)
	if strings.HasPrefix(l, "java/") { // the JDK's HTTP client; feature phones say Java elsewhere
		return true
	}
	for _, a := range automated {
		if strings.Contains(l, a) {
			return true
		}
	}
	return false
}

// Cache maps user-agent strings to their parse; one is shared by every
// partition, safe for concurrent use, and holds at most twice its size in
// entries (cache.TwoGen).
type Cache struct {
	*cache.TwoGen[string, *pipeline.UserAgent]
}

// NewCache returns a cache of about size entries per generation (default
// 10,000 when size <= 0).
func NewCache(size int) *Cache {
	if size <= 0 {
		size = 10000
	}
	return &Cache{cache.New[string, *pipeline.UserAgent](size)}
}

// Get returns the parse of s, parsing it on a miss. The parse's fields
// may be pieces of the text parsed, so a miss parses the cache's own copy
// of s (s may be an event's text, reused after its batch).
func (c *Cache) Get(s string) *pipeline.UserAgent {
	if ua, ok := c.TwoGen.Get(s); ok {
		return ua
	}
	own := strings.Clone(s)
	p := Parse(own)
	c.PutOwned(own, &p)
	return &p
}

// Stage fills the ua_* columns from a shared Cache.
type Stage struct{ cache *Cache }

// New returns a stage over cache.
func New(cache *Cache) (*Stage, error) {
	if cache == nil {
		return nil, fmt.Errorf("useragent: nil cache")
	}
	return &Stage{cache: cache}, nil
}

// Name implements pipeline.Stage.
func (s *Stage) Name() string { return StageName }

// Process implements pipeline.Stage. Events without a user agent keep null
// ua_* columns.
func (s *Stage) Process(_ context.Context, b *pipeline.Batch) error {
	for i := range b.Events {
		e := &b.Events[i]
		if e.State != pipeline.Keep || e.UserAgent == "" {
			continue
		}
		e.UA = *s.cache.Get(e.UserAgent)
	}
	return nil
}
