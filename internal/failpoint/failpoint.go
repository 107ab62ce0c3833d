// Package failpoint lets fault tests kill the process at a named point of
// the delivery protocol, so that a crash lands exactly between two steps
// (for example after a data upload and before the state write) instead of
// wherever a timer happens to fire.
//
// It is off unless SLUICE_FAILPOINTS is set, as a comma-separated list of
// name=N: the Nth time Hit(name) runs, the process sends itself SIGKILL.
// Points: "upload" (after each object upload of a flush), "state-pending"
// (after the pending range is recorded), "state-done" (after the range is
// recorded done, before the Kafka commit).
package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

var (
	once   sync.Once
	mu     sync.Mutex
	counts map[string]int
	at     map[string]int
)

func load() {
	at = map[string]int{}
	counts = map[string]int{}
	for _, kv := range strings.Split(os.Getenv("SLUICE_FAILPOINTS"), ",") {
		name, n, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			continue
		}
		if v, err := strconv.Atoi(n); err == nil && v > 0 {
			at[name] = v
		}
	}
}

// Hit counts a pass through the named point and kills the process when
// the configured count is reached.
func Hit(name string) {
	once.Do(load)
	if len(at) == 0 {
		return
	}
	mu.Lock()
	counts[name]++
	kill := at[name] == counts[name]
	mu.Unlock()
	if kill {
		os.Stderr.WriteString("failpoint " + name + ": SIGKILL\n")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
