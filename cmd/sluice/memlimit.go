package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/sluicedata/sluice/config"
)

// containerMemory is the memory limit of the cgroup this process runs in
// (cgroup v2 memory.max, else v1 memory.limit_in_bytes under root), or 0
// when there is none.
func containerMemory(root string) int64 {
	for _, f := range []string{"memory.max", "memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || v <= 0 || v >= 1<<60 { // "max", or v1's "unlimited"
			return 0
		}
		return v
	}
	return 0
}

// containerShare: sink.memory_limit is at most 1/containerShare of a
// container's memory.
const containerShare = 16

// memoryPlan is how sluice splits its memory.
type memoryPlan struct {
	goLimit int64 // the Go runtime's soft limit; 0 leaves it alone
	buffers int64 // sink.memory_limit in effect
	capped  bool  // buffers was lowered to fit the container
}

// planMemory: in a container of memory C, the Go runtime gets a soft limit
// of 0.8 C (the rest is the binary, the mapped GeoIP database, stacks and
// what the kernel counts besides the heap; hugemem's regions, the open
// row groups and writers' buffers outside the heap, lower the runtime's
// limit by their size as they are backed) and sink.memory_limit is capped
// at C/16 (the stages, Kafka buffers and the garbage collector's headroom
// need the rest: under the soft limit the collector runs each time the
// headroom is allocated, and at C/4 a 256 MiB container spent a quarter
// of its CPU collecting; at C/16 the open row groups end at about 2 MiB
// per partition of 8, costing 0.7% of file size). Without a container
// limit the soft limit is twice the buffers plus 256 MiB: a tighter one
// (1.5x + 192 MiB) made the GC thrash at 64 partitions. GOMEMLIMIT, when
// set, is left to the runtime.
func planMemory(buffers, container int64, gomemlimit bool) memoryPlan {
	p := memoryPlan{buffers: buffers}
	if container > 0 {
		if buffers > container/containerShare {
			p.buffers, p.capped = container/containerShare, true
		}
		p.goLimit = container / 5 * 4
	} else {
		p.goLimit = 2*buffers + 256<<20
	}
	if gomemlimit {
		p.goLimit = 0
	}
	return p
}

// setMemoryLimit applies planMemory to the runtime and to cfg.
func setMemoryLimit(cfg *config.Config, log *slog.Logger) {
	_, gomemlimit := os.LookupEnv("GOMEMLIMIT")
	container := containerMemory("/sys/fs/cgroup")
	p := planMemory(int64(cfg.Sink.MemoryLimit), container, gomemlimit)
	if p.capped {
		log.Info("sink.memory_limit lowered to a sixteenth of the container's memory limit",
			"configured", cfg.Sink.MemoryLimit.String(), "in_effect", config.ByteSize(p.buffers).String(),
			"container", config.ByteSize(container).String())
		cfg.Sink.MemoryLimit = config.ByteSize(p.buffers)
	}
	if p.goLimit > 0 {
		debug.SetMemoryLimit(p.goLimit)
	}
	log.Debug("memory", "container", container, "go_soft_limit", p.goLimit, "memory_limit", p.buffers)
}
