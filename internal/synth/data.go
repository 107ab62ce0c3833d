package synth

type device struct {
	platform string
	app      string
	ua       []string // nil: no user agent (backend events)
	events   []string
}

var webEvents = []string{"page_view", "page_view", "page_view", "click", "click", "scroll", "search", "add_to_cart", "form_submit", "purchase"}

var devices = []device{
	{platform: "web", app: "shop-web", ua: desktopUAs, events: webEvents},
	{platform: "web", app: "shop-web", ua: desktopUAs, events: webEvents},
	{platform: "web", app: "shop-web", ua: mobileUAs, events: webEvents},
	{platform: "ios", app: "shop-ios", ua: iosAppUAs, events: []string{"screen_view", "click", "add_to_cart", "purchase", "login"}},
	{platform: "android", app: "shop-android", ua: androidAppUAs, events: []string{"screen_view", "click", "add_to_cart", "purchase", "signup"}},
	{platform: "server", app: "shop-api", events: []string{"api_request"}},
	{platform: "web", app: "shop-web", ua: botUAs, events: []string{"page_view"}},
}

var desktopUAs = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.6312.122 Safari/537.36 Edg/123.0.2420.97",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
	"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
}

var mobileUAs = []string{
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
	"Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 16_7_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
}

var iosAppUAs = []string{
	"ShopApp/5.12.0 (iPhone; iOS 17.4.1; Scale/3.00) CFNetwork/1494.0.7 Darwin/23.4.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 ShopApp/5.11.2",
}

var androidAppUAs = []string{
	"Dalvik/2.1.0 (Linux; U; Android 14; Pixel 7 Build/AP1A.240405.002) ShopApp/5.12.0",
	"Mozilla/5.0 (Linux; Android 12; moto g(60) Build/S2RIS32.32-20-9-2; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/123.0.6312.118 Mobile Safari/537.36",
}

var botUAs = []string{
	"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
	"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
	"curl/8.5.0",
}

var pages = []string{"/", "/", "/products/espresso-machine", "/products/grinder?color=black", "/cart", "/checkout", "/search?q=coffee+beans", "/blog/how-to-brew", "/account/orders"}

var referrers = []string{"https://www.google.com/", "https://shop.example.com/", "https://t.co/abc123", "https://www.bing.com/search?q=espresso", "https://news.ycombinator.com/"}

// ipv4Nets are the first two octets of the generated IPv4 addresses:
// documentation and benchmark ranges, and a few public-looking ones.
var ipv4Nets = []string{"81.2", "81.3", "92.184", "151.101", "185.199", "203.0", "198.51", "46.101", "89.160", "104.16", "2.16", "5.9"}
