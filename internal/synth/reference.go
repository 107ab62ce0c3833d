package synth

import (
	"fmt"
	"sync"
)

// The reference workload of the throughput benchmark: a few hundred
// distinct user agents and IPv4 addresses over a few thousand networks
// (ReferenceNetworks, which internal/geodb puts in a database).

var (
	refOnce sync.Once
	refUAs  []string
	refNets []string
)

func buildReference() {
	for v := 100; v < 140; v++ {
		refUAs = append(refUAs,
			fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.%d.0 Safari/537.36", v, 5000+v*7),
			fmt.Sprintf("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36", v),
			fmt.Sprintf("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36", v),
		)
		for _, phone := range []string{"Pixel 7", "Pixel 8", "SM-S918B"} {
			refUAs = append(refUAs, fmt.Sprintf("Mozilla/5.0 (Linux; Android 14; %s) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.6367.82 Mobile Safari/537.36", phone, v))
		}
	}
	for v := 100; v < 130; v++ {
		refUAs = append(refUAs,
			fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:%d.0) Gecko/20100101 Firefox/%d.0", v, v),
			fmt.Sprintf("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:%d.0) Gecko/20100101 Firefox/%d.0", v, v),
			fmt.Sprintf("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:%d.0) Gecko/20100101 Firefox/%d.0", v, v),
		)
	}
	for major := 15; major < 18; major++ {
		for minor := range 7 {
			refUAs = append(refUAs,
				fmt.Sprintf("Mozilla/5.0 (iPhone; CPU iPhone OS %d_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/%d.%d Mobile/15E148 Safari/604.1", major, minor, major, minor),
				fmt.Sprintf("Mozilla/5.0 (iPad; CPU OS %d_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/%d.%d Mobile/15E148 Safari/604.1", major, minor, major, minor),
			)
		}
	}
	refUAs = append(refUAs, botUAs...)
	refUAs = append(refUAs, iosAppUAs...)
	refUAs = append(refUAs, androidAppUAs...)
	// 4,096 /24 networks spread over public-looking space.
	for i := range 4096 {
		a := 2 + (i*37)%220
		if a == 10 || a == 127 || a == 172 || a == 192 {
			a++
		}
		refNets = append(refNets, fmt.Sprintf("%d.%d.%d", a, (i*53)%256, (i*97)%256))
	}
}

// ReferenceUserAgents are the reference workload's user agents.
func ReferenceUserAgents() []string { refOnce.Do(buildReference); return refUAs }

// ReferenceNetworks are the /24 prefixes ("a.b.c") of the reference
// workload's IPv4 addresses.
func ReferenceNetworks() []string { refOnce.Do(buildReference); return refNets }
