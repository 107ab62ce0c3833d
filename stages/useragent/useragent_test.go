package useragent

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluicedata/sluice/pipeline"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		ua, browser, os, class string
		bot                    bool
	}{
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "Chrome", "Windows 10", Desktop, false},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0", "Firefox", "Intel Mac OS X 14.4", Desktop, false},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1", "Safari", "CPU iPhone OS 17_4_1 like Mac OS X", Mobile, false},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36", "Chrome", "Android 14", Mobile, false},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot", "", Bot, true},
		{"curl/8.5.0", "curl", "", Bot, true},
		{"python-requests/2.31.0", "python-requests", "", Bot, true},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36", "Headless Chrome", "Linux x86_64", Bot, true},
	} {
		got := Parse(tt.ua)
		if got.Browser != tt.browser || got.OS != tt.os || got.DeviceClass != tt.class || got.IsBot != tt.bot || !got.Known {
			t.Errorf("%s:\n got %+v\nwant browser=%q os=%q class=%s bot=%v", tt.ua, got, tt.browser, tt.os, tt.class, tt.bot)
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
}
