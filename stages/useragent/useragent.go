// Package useragent is the user-agent stage: github.com/mssola/useragent
// behind a bounded cache shared by every partition, since user agents
// repeat heavily. A cache hit does not allocate.
package useragent

import (
	"context"
	"fmt"
	"strings"

	"github.com/mssola/useragent"

	"github.com/sluicedata/sluice/internal/cache"
	"github.com/sluicedata/sluice/pipeline"
)

// StageName is the name of this stage.
const StageName = "useragent"

// Device classes.
const (
	Desktop = "desktop"
	Mobile  = "mobile"
	Bot     = "bot"
)

// Parse parses one user-agent string (no cache).
func Parse(s string) pipeline.UserAgent {
	ua := useragent.New(s)
	name, version := ua.Browser()
	out := pipeline.UserAgent{
		Browser:        name,
		BrowserVersion: version,
		OS:             ua.OS(),
		IsBot:          ua.Bot() || looksAutomated(s),
		Known:          true,
	}
	switch {
	case out.IsBot:
		out.DeviceClass = Bot
	case ua.Mobile():
		out.DeviceClass = Mobile
	default:
		out.DeviceClass = Desktop
	}
	return out
}

// automated are substrings (lower case) of agents mssola/useragent does not
// flag as bots but that are not people: HTTP libraries, command-line
// tools, headless browsers and crawlers that do not say "bot".
var automated = []string{
	"curl/", "wget/", "python-requests", "python-urllib", "go-http-client", "java/", "libwww-perl",
	"apache-httpclient", "okhttp/", "axios/", "node-fetch", "scrapy", "headlesschrome", "phantomjs",
	"crawler", "spider", "slurp", "facebookexternalhit", "bot/", "bot;", "-bot", "_bot",
}

func looksAutomated(s string) bool {
	l := strings.ToLower(s)
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

// Get returns the parse of s, parsing it on a miss.
func (c *Cache) Get(s string) *pipeline.UserAgent {
	if ua, ok := c.TwoGen.Get(s); ok {
		return ua
	}
	p := Parse(s)
	c.Put(s, &p)
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
