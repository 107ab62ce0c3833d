// Package testkit holds test helpers shared by sluice's end-to-end tests:
// the embedded Kafka broker (kfake on 127.0.0.1), the sluice binary built
// once per test process, and a read-back of the output with Arrow (and,
// for final checks, DuckDB and hyparquet too: ReadAll).
package testkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/internal/arrowread"
	"github.com/sluicedata/sluice/internal/testkit/readback"
)

// Kafka starts an in-process broker on loopback with topic created, closed
// when the test ends.
func Kafka(t testing.TB, topic string, partitions int32, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/sluice once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, here, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(here), "..", "..")
		dir, err := os.MkdirTemp("", "sluice-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "sluice")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/sluice")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Row is one output row: column name to value as Arrow reads it.
type Row = map[string]any

// Output is everything under a sink directory, read with Arrow.
type Output struct {
	Events   []Row
	Rejected []Row
	Files    []string // keys relative to the root
}

// ReadOutput reads every Parquet file under root.
func ReadOutput(t testing.TB, root string) Output {
	t.Helper()
	var out Output
	for _, sub := range []string{"events", "rejected"} {
		err := filepath.WalkDir(filepath.Join(root, sub), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					return filepath.SkipDir
				}
				return err
			}
			if d.IsDir() || !strings.HasSuffix(p, ".parquet") {
				return nil
			}
			f, err := arrowread.Read(context.Background(), p, -1)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			out.Files = append(out.Files, filepath.ToSlash(rel))
			if sub == "events" {
				out.Events = append(out.Events, f.Rows...)
			} else {
				out.Rejected = append(out.Rejected, f.Rows...)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("read output: %v", err)
		}
	}
	sort.Strings(out.Files)
	return out
}

// ReadAll is ReadOutput and more, for a test's final look at its output:
// every file is also read by DuckDB and hyparquet, which must agree with
// Arrow on every column chunk's path, every value and every NULL (package
// readback). Polling loops use the cheaper ReadOutput.
func ReadAll(t testing.TB, root string) Output {
	t.Helper()
	out := ReadOutput(t, root)
	paths := make([]string, len(out.Files))
	for i, f := range out.Files {
		paths[i] = filepath.Join(root, filepath.FromSlash(f))
	}
	readback.Files(t, paths)
	return out
}

// Total is the number of rows in both outputs.
func (o Output) Total() int { return len(o.Events) + len(o.Rejected) }

// Lineage is where a row came from.
type Lineage struct {
	Partition int32
	Offset    int64
}

// CountByLineage counts output rows per source record.
func (o Output) CountByLineage() map[Lineage]int {
	m := make(map[Lineage]int, o.Total())
	for _, rows := range [][]Row{o.Events, o.Rejected} {
		for _, r := range rows {
			m[Lineage{r["src_partition"].(int32), r["src_offset"].(int64)}]++
		}
	}
	return m
}

// withAdmin runs fn with an admin client on brokers and a 10s context.
func withAdmin(t testing.TB, brokers []string, fn func(ctx context.Context, adm *kadm.Client) error) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fn(ctx, kadm.NewClient(cl)); err != nil {
		t.Fatal(err)
	}
}

// EndOffsets returns the end offset of every partition of topic.
func EndOffsets(t testing.TB, brokers []string, topic string) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	withAdmin(t, brokers, func(ctx context.Context, adm *kadm.Client) error {
		ends, err := adm.ListEndOffsets(ctx, topic)
		ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
		return err
	})
	return out
}

// Committed returns the group's committed offsets for topic.
func Committed(t testing.TB, brokers []string, group, topic string) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	withAdmin(t, brokers, func(ctx context.Context, adm *kadm.Client) error {
		offs, err := adm.FetchOffsets(ctx, group)
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == topic {
				out[o.Partition] = o.At
			}
		})
		return err
	})
	return out
}

// WaitFor polls cond every 100ms until it holds or timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
