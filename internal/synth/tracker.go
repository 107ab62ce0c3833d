package synth

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"sync"
)

// The tracker workload: the throughput benchmark's second workload, shaped
// like real tracker traffic rather than uniform draws. Events come from
// sessions (a session keeps its user, address, user agent and device
// across its events); a nested "context" object (page, screen, locale,
// campaign, library) is in most events; user agents (several hundred)
// and networks follow a Zipf law, as a few browsers and ISPs carry most
// traffic; addresses fall in TrackerNetworks (over 100,000 IPv4 and IPv6
// networks from /16 to /30 and /32 to /64, with holes between them).

// TrackerNetwork is one network of the tracker workload's GeoIP database
// and the index of its place in TrackerPlaces.
type TrackerNetwork struct {
	Prefix netip.Prefix
	Place  int
}

// TrackerPlace is a synthetic location (test data, not a real place).
type TrackerPlace struct {
	CountryCode, Country, RegionCode, Region, City, Postal, TimeZone string
	Lat, Lon                                                         float64
}

var (
	trackerOnce   sync.Once
	trackerNets   []TrackerNetwork
	trackerPlaces []TrackerPlace
	trackerUAs    []string
)

const (
	trackerIPv4Networks = 100_000
	trackerIPv6Networks = 30_000
	trackerPlaceCount   = 800
)

var trackerCountries = []struct{ code, name, tz string }{
	{"US", "United States", "America/New_York"}, {"US", "United States", "America/Chicago"}, {"US", "United States", "America/Los_Angeles"},
	{"GB", "United Kingdom", "Europe/London"}, {"DE", "Germany", "Europe/Berlin"}, {"FR", "France", "Europe/Paris"},
	{"ES", "Spain", "Europe/Madrid"}, {"IT", "Italy", "Europe/Rome"}, {"NL", "Netherlands", "Europe/Amsterdam"},
	{"SE", "Sweden", "Europe/Stockholm"}, {"PL", "Poland", "Europe/Warsaw"}, {"BR", "Brazil", "America/Sao_Paulo"},
	{"MX", "Mexico", "America/Mexico_City"}, {"CA", "Canada", "America/Toronto"}, {"IN", "India", "Asia/Kolkata"},
	{"JP", "Japan", "Asia/Tokyo"}, {"KR", "South Korea", "Asia/Seoul"}, {"AU", "Australia", "Australia/Sydney"},
	{"ZA", "South Africa", "Africa/Johannesburg"}, {"NG", "Nigeria", "Africa/Lagos"}, {"TR", "Türkiye", "Europe/Istanbul"},
	{"ID", "Indonesia", "Asia/Jakarta"}, {"AR", "Argentina", "America/Argentina/Buenos_Aires"}, {"CH", "Switzerland", "Europe/Zurich"},
}

func buildTracker() {
	rng := rand.New(rand.NewPCG(2027, 11))
	for i := range trackerPlaceCount {
		c := trackerCountries[i%len(trackerCountries)]
		p := TrackerPlace{CountryCode: c.code, Country: c.name, TimeZone: c.tz,
			Lat: float64(rng.IntN(1600000)-800000) / 10000, Lon: float64(rng.IntN(3600000)-1800000) / 10000}
		switch i % 10 {
		case 0: // country only
		case 1: // region, no city
			p.RegionCode, p.Region = fmt.Sprintf("R%d", i%37), fmt.Sprintf("Region %d", i%37)
		default:
			p.RegionCode, p.Region = fmt.Sprintf("R%d", i%37), fmt.Sprintf("Region %d", i%37)
			p.City = fmt.Sprintf("Town %d", i)
			if i%3 != 0 {
				p.Postal = fmt.Sprintf("%05d", rng.IntN(100000))
			}
		}
		trackerPlaces = append(trackerPlaces, p)
	}
	// IPv4: walk the unicast space upwards, each network aligned to its
	// size, a random gap (a hole without a record) now and then.
	reserved := func(a uint32) bool {
		b := byte(a >> 24)
		return b == 10 || b == 100 || b == 127 || b == 169 || b == 172 || b == 192 || b == 198 || b == 203 || b >= 224
	}
	cur := uint32(2) << 24
	for len(trackerNets) < trackerIPv4Networks {
		var bits int
		switch r := rng.IntN(100); {
		case r < 2:
			bits = 16
		case r < 12:
			bits = 20
		case r < 27:
			bits = 22
		case r < 80:
			bits = 24
		case r < 90:
			bits = 25 + rng.IntN(2)
		default:
			bits = 27 + rng.IntN(4)
		}
		size := uint32(1) << (32 - bits)
		cur = (cur + size - 1) &^ (size - 1)
		if rng.IntN(8) == 0 {
			cur += size * uint32(1+rng.IntN(4)) // a hole
		}
		if reserved(cur) {
			cur = (cur>>24 + 1) << 24
			continue
		}
		a := netip.AddrFrom4([4]byte{byte(cur >> 24), byte(cur >> 16), byte(cur >> 8), byte(cur)})
		trackerNets = append(trackerNets, TrackerNetwork{netip.PrefixFrom(a, bits), rng.IntN(trackerPlaceCount)})
		cur += size
	}
	// IPv6 in 2a00::/12 by /64 units, the same way.
	cur6 := uint64(0x2a00) << 48
	for range trackerIPv6Networks {
		var bits int
		switch r := rng.IntN(100); {
		case r < 3:
			bits = 32
		case r < 15:
			bits = 40
		case r < 70:
			bits = 48
		case r < 90:
			bits = 56
		default:
			bits = 64
		}
		size := uint64(1) << (64 - bits)
		cur6 = (cur6 + size - 1) &^ (size - 1)
		if rng.IntN(8) == 0 {
			cur6 += size
		}
		var b [16]byte
		for i := range 8 {
			b[i] = byte(cur6 >> (56 - 8*i))
		}
		trackerNets = append(trackerNets, TrackerNetwork{netip.PrefixFrom(netip.AddrFrom16(b), bits), rng.IntN(trackerPlaceCount)})
		cur6 += size
	}
	// User agents: the reference list plus Edge, Opera, Samsung Internet,
	// desktop Safari and in-app web views.
	trackerUAs = append(trackerUAs, ReferenceUserAgents()...)
	for v := 110; v < 140; v++ {
		trackerUAs = append(trackerUAs,
			fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36 Edg/%d.0.%d.%d", v, v, 2000+v, v%90),
			fmt.Sprintf("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36 Edg/%d.0.0.0", v, v),
			fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36 OPR/%d.0.0.0", v, v-14),
		)
	}
	for v := 18; v < 26; v++ {
		for _, m := range []string{"SM-A546B", "SM-G991B", "SM-S911B"} {
			trackerUAs = append(trackerUAs, fmt.Sprintf("Mozilla/5.0 (Linux; Android 14; %s) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/%d.0 Chrome/115.0.0.0 Mobile Safari/537.36", m, v))
		}
	}
	for major := 15; major < 18; major++ {
		for minor := range 6 {
			trackerUAs = append(trackerUAs,
				fmt.Sprintf("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/%d.%d Safari/605.1.15", major, minor),
				fmt.Sprintf("Mozilla/5.0 (iPhone; CPU iPhone OS %d_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 320.0.0.%d.%d", major, minor, 30+minor, major),
			)
		}
	}
	// Shuffled so that the Zipf head is a mix of browsers, not the first
	// list's.
	rng.Shuffle(len(trackerUAs), func(i, j int) { trackerUAs[i], trackerUAs[j] = trackerUAs[j], trackerUAs[i] })
	rng.Shuffle(len(trackerNets), func(i, j int) { trackerNets[i], trackerNets[j] = trackerNets[j], trackerNets[i] })
}

// TrackerNetworks are the tracker workload's GeoIP networks.
func TrackerNetworks() []TrackerNetwork { trackerOnce.Do(buildTracker); return trackerNets }

// TrackerPlaces are the places of TrackerNetworks.
func TrackerPlaces() []TrackerPlace { trackerOnce.Do(buildTracker); return trackerPlaces }

// TrackerUserAgents are the tracker workload's user agents.
func TrackerUserAgents() []string { trackerOnce.Do(buildTracker); return trackerUAs }

// TrackerOptions shape a tracker stream.
type TrackerOptions struct {
	Seed    uint64  // default 1
	DupRate float64 // share of duplicates
	BadRate float64 // share of bad records
	// Users (default 1,000,000) and Sessions, the sessions open at once
	// (default 20,000).
	Users, Sessions int
}

// Tracker generates the tracker workload. Not safe for concurrent use.
type Tracker struct {
	opts     TrackerOptions
	g        *Generator // the event body, bad records and duplicates
	rng      *rand.Rand
	sessions []trackerSession
	uaZipf   *rand.Zipf
	netZipf  *rand.Zipf
}

type trackerSession struct {
	id      string
	user    int // -1: anonymous
	ip      string
	ua      string
	dev     *device
	events  int
	context bool
}

// NewTracker returns a tracker-workload generator.
func NewTracker(opts TrackerOptions) *Tracker {
	trackerOnce.Do(buildTracker)
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Users == 0 {
		opts.Users = 1_000_000
	}
	if opts.Sessions == 0 {
		opts.Sessions = 20_000
	}
	t := &Tracker{
		opts: opts,
		g:    New(Options{Seed: opts.Seed, DupRate: opts.DupRate, BadRate: opts.BadRate, Users: opts.Users}),
		rng:  rand.New(rand.NewPCG(opts.Seed^0x51, opts.Seed)),
	}
	t.uaZipf = rand.NewZipf(t.rng, 1.2, 4, uint64(len(trackerUAs)-1))
	t.netZipf = rand.NewZipf(t.rng, 1.05, 50, uint64(len(trackerNets)-1))
	t.sessions = make([]trackerSession, opts.Sessions)
	for i := range t.sessions {
		t.newSession(&t.sessions[i])
	}
	return t
}

func (t *Tracker) newSession(s *trackerSession) {
	dev := &devices[t.rng.IntN(len(devices))]
	*s = trackerSession{dev: dev, user: -1, context: t.rng.IntN(10) != 0}
	if t.rng.IntN(10) >= 3 {
		s.user = t.rng.IntN(t.opts.Users)
	}
	s.id = "s-" + strconv.FormatUint(t.rng.Uint64(), 36)
	if dev.ua != nil {
		s.ua = trackerUAs[t.uaZipf.Uint64()]
	}
	s.ip = t.address()
}

// address is an address in a Zipf-drawn network (3% outside every
// network, 1% no address at all).
func (t *Tracker) address() string {
	switch r := t.rng.IntN(100); {
	case r < 1:
		return ""
	case r < 4:
		return fmt.Sprintf("%d.%d.%d.%d", 225+t.rng.IntN(30), t.rng.IntN(256), t.rng.IntN(256), 1+t.rng.IntN(254))
	}
	n := trackerNets[t.netZipf.Uint64()].Prefix
	b := n.Addr().AsSlice()
	for i := n.Bits(); i < len(b)*8; i++ {
		if t.rng.IntN(2) == 1 {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a.String()
}

// Append appends the next record value to dst.
func (t *Tracker) Append(dst []byte) ([]byte, Kind) {
	g := t.g
	if out, kind, ok := g.step(dst); ok {
		return out, kind
	}
	s := &t.sessions[t.rng.IntN(len(t.sessions))]
	if s.events > 3 && t.rng.IntN(12) == 0 {
		t.newSession(s) // a session ends, another starts
	}
	s.events++
	n := len(dst)
	dst = t.appendEvent(dst, s)
	g.remember(dst[n:])
	return dst, Valid
}

func (t *Tracker) appendEvent(dst []byte, s *trackerSession) []byte {
	g := t.g
	name := g.pick(s.dev.events)
	dst = append(dst, `{"event_id":"`...)
	dst = g.uuid(dst)
	dst = append(dst, `","event":"`...)
	dst = append(dst, name...)
	dst = append(dst, `","ts":"`...)
	dst = g.now.AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, '"')
	if s.user >= 0 {
		dst = append(dst, `,"user_id":"u-`...)
		dst = strconv.AppendInt(dst, int64(s.user), 36)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"session_id":"`...)
	dst = append(dst, s.id...)
	dst = append(dst, '"')
	if s.ip != "" {
		dst = append(dst, `,"ip":"`...)
		dst = append(dst, s.ip...)
		dst = append(dst, '"')
	}
	if s.ua != "" {
		dst = append(dst, `,"user_agent":"`...)
		dst = append(dst, s.ua...)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"app_id":"`...)
	dst = append(dst, s.dev.app...)
	dst = append(dst, `","platform":"`...)
	dst = append(dst, s.dev.platform...)
	dst = append(dst, '"')
	page := g.pick(pages)
	if s.dev.platform == "web" {
		dst = g.appendPage(dst, page)
	}
	dst = append(dst, `,"properties":`...)
	dst = g.properties(dst, name)
	if s.context && s.dev.platform != "server" {
		dst = t.appendContext(dst, s, page)
	}
	return append(dst, '}')
}

// appendContext appends the nested context object trackers send beside
// the event (it lands in extra).
func (t *Tracker) appendContext(dst []byte, s *trackerSession, page string) []byte {
	g := t.g
	dst = append(dst, `,"context":{"page":{"path":"`...)
	dst = append(dst, page...)
	dst = append(dst, `","title":"`...)
	dst = append(dst, g.pick([]string{"Home", "Espresso machine — Shop", "Your cart", "Checkout", "Search results", "How to brew"})...)
	dst = append(dst, `"},"screen":{"width":`...)
	dst = strconv.AppendInt(dst, int64(g.pick2([]int{390, 412, 768, 1280, 1440, 1920, 2560})), 10)
	dst = append(dst, `,"height":`...)
	dst = strconv.AppendInt(dst, int64(g.pick2([]int{844, 915, 1024, 720, 900, 1080, 1440})), 10)
	dst = append(dst, `,"density":`...)
	dst = strconv.AppendInt(dst, int64(1+g.rng.IntN(3)), 10)
	dst = append(dst, `},"locale":"`...)
	dst = append(dst, g.pick([]string{"en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "pt-BR", "ja-JP"})...)
	dst = append(dst, `","library":{"name":"analytics.js","version":"4.`...)
	dst = strconv.AppendInt(dst, int64(g.rng.IntN(12)), 10)
	dst = append(dst, `.0"}`...)
	if g.rng.IntN(3) == 0 {
		dst = append(dst, `,"campaign":{"source":"`...)
		dst = append(dst, g.pick([]string{"newsletter", "google", "facebook", "partner"})...)
		dst = append(dst, `","medium":"`...)
		dst = append(dst, g.pick([]string{"email", "cpc", "social", "referral"})...)
		dst = append(dst, `","name":"spring-`...)
		dst = strconv.AppendInt(dst, int64(g.rng.IntN(20)), 10)
		dst = append(dst, `"}`...)
	}
	return append(dst, '}')
}
