package useragent

import (
	"context"
	"fmt"
	"testing"
	"unsafe"

	"github.com/sluicedata/sluice/internal/synth"
	"github.com/sluicedata/sluice/pipeline"
)

// TestParse: the columns for the agents that carry most traffic today.
func TestParse(t *testing.T) {
	for _, tt := range []struct {
		ua, browser, version, os, osVersion, class string
		bot                                        bool
	}{
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.91 Safari/537.36", "Chrome", "124.0.6367", "Windows", "10", Desktop, false},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "Chrome", "124.0.0", "Mac OS X", "10.15.7", Desktop, false},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36", "Chrome Mobile", "124.0.6367", "Android", "14", Mobile, false},
		{"Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Safari/537.36", "Chrome", "124.0.6367", "Android", "14", Tablet, false},
		{"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "Chrome", "124.0.0", "Chrome OS", "14541.0.0", Desktop, false},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15", "Safari", "17.4.1", "Mac OS X", "10.15.7", Desktop, false},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1", "Mobile Safari", "17.4.1", "iOS", "17.4.1", Mobile, false},
		{"Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", "Mobile Safari", "17.4", "iOS", "17.4", Tablet, false},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1", "Chrome Mobile iOS", "124.0.6367", "iOS", "17.4", Mobile, false},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", "Firefox", "125.0", "Windows", "10", Desktop, false},
		{"Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0", "Firefox Mobile", "125.0", "Android", "14", Mobile, false},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67", "Edge", "124.0.2478", "Windows", "10", Desktop, false},
		{"Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36", "Samsung Internet", "24.0", "Android", "14", Mobile, false},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot", "2.1", "", "", Bot, true},
		{"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.201 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot", "2.1", "Android", "6.0.1", Bot, true},
		{"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36", "bingbot", "2.0", "", "", Bot, true},
		{"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)", "GPTBot", "1.2", "", "", Bot, true},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)", "Applebot", "0.1", "Mac OS X", "10.15.7", Bot, true},
		{"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "AhrefsBot", "7.0", "", "", Bot, true},
		{"curl/8.5.0", "curl", "8.5.0", "", "", Bot, true},
		{"python-requests/2.31.0", "Python Requests", "2.31", "", "", Bot, true},
		{"Go-http-client/2.0", "Go-http-client", "2.0", "", "", Bot, true},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36", "HeadlessChrome", "124.0.0", "Linux", "", Bot, true},
		{"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.201 Mobile Safari/537.36 (compatible; Google-InspectionTool/1.0;)", "Chrome Mobile", "124.0.6367", "Android", "6.0.1", Bot, true},
	} {
		got := Parse(tt.ua)
		want := pipeline.UserAgent{Browser: tt.browser, BrowserVersion: tt.version, OS: tt.os, OSVersion: tt.osVersion,
			DeviceClass: tt.class, IsBot: tt.bot, Known: true}
		if got != want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.ua, got, want)
		}
	}
}

func TestStageNullsAndCache(t *testing.T) {
	c := NewCache(2)
	s, _ := New(c)
	chrome := "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36"
	b := &pipeline.Batch{Events: []pipeline.Event{{UserAgent: chrome}, {}, {UserAgent: chrome}, {UserAgent: "x", State: pipeline.Rejected}}}
	if err := s.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if b.Events[0].UA.Browser != "Chrome" || b.Events[0].UA.DeviceClass != Desktop || b.Events[2].UA != b.Events[0].UA {
		t.Errorf("parsed %+v", b.Events[0].UA)
	}
	if b.Events[1].UA != (pipeline.UserAgent{}) || b.Events[3].UA != (pipeline.UserAgent{}) {
		t.Error("no UA (or not kept) must leave nulls")
	}
	if c.Hits() != 1 || c.Misses() != 1 {
		t.Errorf("hits %d misses %d", c.Hits(), c.Misses())
	}
	for i := range 10 {
		c.Get(fmt.Sprintf("agent/%d", i))
	}
	if n := c.Len(); n > 4 {
		t.Errorf("cache holds %d entries, bound is 2 per generation", n)
	}
}

// TestCacheOwnsItsParses: an event's user agent aliases memory reused for
// the next batch (decode's arena); the cached parse must not.
func TestCacheOwnsItsParses(t *testing.T) {
	c := NewCache(100)
	const ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.91 Safari/537.36"
	buf := []byte(ua)
	first := *c.Get(unsafe.String(&buf[0], len(buf)))
	for i := range buf {
		buf[i] = '#'
	}
	if got := *c.Get(ua); got != first || got.Browser != "Chrome" || got.BrowserVersion != "124.0.6367" || got.OS != "Windows" {
		t.Errorf("cached parse after its input was overwritten: %+v, first %+v", got, first)
	}
	if c.Hits() != 1 {
		t.Errorf("%d hits: the cached key changed with its input", c.Hits())
	}
}

func TestCacheHitDoesNotAllocate(t *testing.T) {
	c := NewCache(100)
	ua := "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
	c.Get(ua)
	if n := testing.AllocsPerRun(1000, func() { c.Get(ua) }); n != 0 {
		t.Errorf("cache hit allocates %.1f times", n)
	}
}

func BenchmarkUserAgent(b *testing.B) {
	uas := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	}
	b.Run("hit", func(b *testing.B) {
		c := NewCache(100)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			c.Get(uas[i%len(uas)])
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			Parse(uas[i%len(uas)])
		}
	})
	// Each distinct agent of the tracker workload parsed once: what a
	// run pays for them (the cache answers the rest).
	b.Run("miss-tracker", func(b *testing.B) {
		tracker := synth.TrackerUserAgents()
		families()
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			Parse(tracker[i%len(tracker)])
		}
	})
}
