package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestContainerMemory(t *testing.T) {
	for _, c := range []struct {
		file, content string
		want          int64
	}{
		{"memory.max", "268435456\n", 256 << 20},
		{"memory.max", "max\n", 0},
		{"memory/memory.limit_in_bytes", "1073741824\n", 1 << 30},
		{"memory/memory.limit_in_bytes", "9223372036854771712\n", 0}, // v1 unlimited
		{"", "", 0},
	} {
		root := t.TempDir()
		if c.file != "" {
			os.MkdirAll(filepath.Dir(filepath.Join(root, c.file)), 0o755)
			os.WriteFile(filepath.Join(root, c.file), []byte(c.content), 0o644)
		}
		if got := containerMemory(root); got != c.want {
			t.Errorf("%s %q: %d, want %d", c.file, c.content, got, c.want)
		}
	}
}

func TestPlanMemory(t *testing.T) {
	for _, c := range []struct {
		name               string
		buffers, container int64
		gomemlimit         bool
		want               memoryPlan
	}{
		{"no container", 512 << 20, 0, false, memoryPlan{goLimit: 1280 << 20, buffers: 512 << 20}},
		{"256 MiB container caps the buffers", 512 << 20, 256 << 20, false, memoryPlan{goLimit: 204 << 20, buffers: 16 << 20, capped: true}},
		{"4 GiB container caps them at 256 MiB", 512 << 20, 4 << 30, false, memoryPlan{goLimit: 3276 << 20, buffers: 256 << 20, capped: true}},
		{"large container keeps them", 512 << 20, 16 << 30, false, memoryPlan{goLimit: 13107 << 20, buffers: 512 << 20}},
		{"GOMEMLIMIT set", 512 << 20, 256 << 20, true, memoryPlan{buffers: 16 << 20, capped: true}},
	} {
		got := planMemory(c.buffers, c.container, c.gomemlimit)
		// container/5*4 rounds down by a few bytes: compare in MiB.
		got.goLimit >>= 20
		c.want.goLimit >>= 20
		if got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}
