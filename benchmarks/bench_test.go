// Package benchmarks measures sluice per stage and end to end. Run with
// `make bench`; BENCHMARKS.md records the figures of one run.
package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/internal/geodb"
	"github.com/sluicedata/sluice/internal/synth"
	"github.com/sluicedata/sluice/internal/testkit"
	"github.com/sluicedata/sluice/pipeline"
	"github.com/sluicedata/sluice/pipeline/kafka"
	"github.com/sluicedata/sluice/sinks/objstore"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/stages/decode"
	"github.com/sluicedata/sluice/stages/geo"
	"github.com/sluicedata/sluice/stages/pseudonymize"
	"github.com/sluicedata/sluice/stages/useragent"
)

// workload returns n deterministic records of the reference mix (2%
// duplicates, 0.5% bad) and their total size.
func workload(n int) ([][]byte, int64) {
	return records(synth.New(synth.Options{Seed: 2026, DupRate: 0.02, BadRate: 0.005}), n)
}

// records returns n records of g and their total size.
func records(g generator, n int) ([][]byte, int64) {
	out := make([][]byte, n)
	var size int64
	for i := range out {
		out[i], _ = g.Append(nil)
		size += int64(len(out[i]))
	}
	return out, size
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func peakRSS() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss << 10 // KiB on Linux
}

const batchSize = 1000

func fillBatch(b *pipeline.Batch, recs [][]byte, off int64) {
	b.Reset()
	for i, r := range recs {
		b.Events = append(b.Events, pipeline.Event{Topic: "events", Partition: 0, Offset: off + int64(i),
			KafkaTime: 1772366400000 + (off+int64(i))*10, Raw: r})
	}
}

// processedBatches cuts recs into batches of n (a last partial batch is
// left out) and runs stages over each, outside any timer; each batch keeps
// its events' text in its own arena.
func processedBatches(b *testing.B, recs [][]byte, n int, stages ...pipeline.Stage) []*pipeline.Batch {
	var batches []*pipeline.Batch
	for j := 0; j+n <= len(recs); j += n {
		bt := &pipeline.Batch{}
		fillBatch(bt, recs[j:j+n], int64(j))
		for _, s := range stages {
			if err := s.Process(context.Background(), bt); err != nil {
				b.Fatal(err)
			}
		}
		batches = append(batches, bt)
	}
	return batches
}

// benchStages runs stages over the workload in batches; one op is one
// record through all of them.
func benchStages(b *testing.B, stages ...pipeline.Stage) {
	recs, size := workload(10000)
	benchStagesOn(b, recs, size, stages...)
}

// benchStagesOn is benchStages over recs (size bytes in all).
func benchStagesOn(b *testing.B, recs [][]byte, size int64, stages ...pipeline.Stage) {
	batch := &pipeline.Batch{}
	b.ReportAllocs()
	b.SetBytes(size / int64(len(recs)))
	b.ResetTimer()
	for i := 0; i < b.N; i += batchSize {
		j := i % len(recs)
		k := min(j+batchSize, len(recs), j+b.N-i)
		fillBatch(batch, recs[j:k], int64(i))
		for _, s := range stages {
			if err := s.Process(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkDecode: one op is one record.
func BenchmarkDecode(b *testing.B) { benchStages(b, decode.New(nil)) }

// BenchmarkDecodeTracker: BenchmarkDecode over 10,000 records of the
// tracker workload (a nested context in most events, longer strings).
func BenchmarkDecodeTracker(b *testing.B) {
	recs, size := trackerRecords(10000)
	benchStagesOn(b, recs, size, decode.New(nil))
}

// trackerRecords is the first n records of BenchmarkReference's tracker
// workload and their size in bytes.
func trackerRecords(n int) ([][]byte, int64) {
	return records(synth.NewTracker(synth.TrackerOptions{Seed: 2026, DupRate: 0.02, BadRate: 0.005}), n)
}

// trackerGeoDB writes the tracker workload's 130,000-network GeoIP
// database into the benchmark's temp dir and returns its path.
func trackerGeoDB(b *testing.B) string {
	path := filepath.Join(b.TempDir(), "tracker-city.mmdb")
	if err := geodb.Write(path, geodb.TrackerRecords(), 1); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkGeoTracker: decode, then geo with the tracker workload's
// 130,000-network database, over 100,000 of its records (addresses drawn
// by its Zipf law over the networks: the block cache's mix of hits and
// misses); one op is one record through both.
func BenchmarkGeoTracker(b *testing.B) {
	recs, size := trackerRecords(100000)
	db, g := trackerGeoStage(b)
	defer db.Close()
	benchStagesOn(b, recs, size, decode.New(nil), g)
}

// trackerGeoStage opens the tracker workload's database and a geo stage
// of the default options over it.
func trackerGeoStage(b *testing.B) (*geo.Database, *geo.Stage) {
	db, err := geo.Open(trackerGeoDB(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	g, err := geo.New(db, geo.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return db, g
}

// BenchmarkGeoStage: geo alone, with the tracker workload's database, over
// 400,000 of its records decoded once outside the timer (the first pass
// fills the block cache, later ones are the steady state); one op is one
// event. BenchmarkGeoTracker's decode hides most of what geo costs.
func BenchmarkGeoStage(b *testing.B) {
	recs, size := trackerRecords(400_000)
	db, g := trackerGeoStage(b)
	defer db.Close()
	batches := processedBatches(b, recs, batchSize, decode.New(nil))
	b.ReportAllocs()
	b.SetBytes(size / int64(len(recs)))
	b.ResetTimer()
	for i := 0; i < b.N; i += batchSize {
		if err := g.Process(context.Background(), batches[(i/batchSize)%len(batches)]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	st := db.Stats()
	b.ReportMetric(float64(st.BlockHits.Load())/float64(max(st.Lookups.Load(), 1)), "block-hits/lookup")
}

// BenchmarkParquetSink: one op is one decoded event written, with a flush
// (close, compress, write to disk) every 100,000 events.
// The events are those of the reference chain (decode, geo, useragent,
// pseudonymize: every column as the reference run fills it); tracker-zstd
// writes 50,000 events of BenchmarkReference's tracker workload, enriched
// with its 130,000-network database.
func BenchmarkParquetSink(b *testing.B) {
	for _, v := range []struct{ name, codec, level string }{
		{"zstd-fastest", "zstd", "fastest"}, {"zstd-default", "zstd", "default"}, {"snappy", "snappy", ""},
		{"tracker-zstd", "zstd", "fastest"},
	} {
		b.Run(v.name, func(b *testing.B) {
			recs, size := workload(10000)
			chain := enrich
			if v.name == "tracker-zstd" {
				recs, size = trackerRecords(50000)
				geoPath := trackerGeoDB(b)
				chain = func(b *testing.B) pipeline.StageFactory { return enrichWith(b, geoPath) }
			}
			dir := b.TempDir()
			store, err := objstore.NewDir(dir)
			if err != nil {
				b.Fatal(err)
			}
			sink, _ := pqsink.New(store, pqsink.Options{Compression: v.codec, ZstdLevel: v.level})
			p, _ := sink.OpenPartition("events", 0)
			factory := chain(b)
			// Enrich once outside the timer; the sink copies what it keeps.
			// Each batch keeps its events' text in its own arena.
			stages, err := factory("events", 0)
			if err != nil {
				b.Fatal(err)
			}
			batches := processedBatches(b, recs, batchSize, stages...)
			b.ReportAllocs()
			b.SetBytes(size / int64(len(recs)))
			b.ResetTimer()
			var first int64
			for i := 0; i < b.N; i += batchSize {
				if err := p.Write(batches[(i/batchSize)%len(batches)]); err != nil {
					b.Fatal(err)
				}
				if p.Pending().Rows >= 100_000 {
					if _, err := p.Flush(context.Background(), first, int64(i)); err != nil {
						b.Fatal(err)
					}
					first = int64(i) + 1
				}
			}
			if _, err := p.Flush(context.Background(), first, int64(b.N)); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(dirBytes(b, dir))/float64(b.N), "file-B/event")
		})
	}
}

// BenchmarkParquetSinkFiles: the sink's cost as the files get smaller and
// more are open at once, the work of one run spread over 1, 8 and 64
// partitions. A run of 1,000,000 events gives each of 8 partitions a file
// of 125,000 rows and each of 64 one of 15,625; batches of 256 go to the
// partitions in turn, as the workers hand them over. partitions=1 with
// small files is the cost of the files alone, without the other open
// writers competing for the CPU's caches. One op is one event.
func BenchmarkParquetSinkFiles(b *testing.B) {
	const events, batch = 1_000_000, 256
	recs, size := workload(100_000)
	factory := enrich(b)
	stages, err := factory("events", 0)
	if err != nil {
		b.Fatal(err)
	}
	batches := processedBatches(b, recs, batch, stages...)
	for _, c := range []struct{ parts, rows int }{{1, events}, {8, events / 8}, {64, events / 64}, {1, events / 64}} {
		b.Run(fmt.Sprintf("partitions=%d/rows=%d", c.parts, c.rows), func(b *testing.B) {
			dir, parts := openBenchPartitions(b, c.parts)
			b.ReportAllocs()
			b.SetBytes(size / int64(len(recs)))
			b.ResetTimer()
			for i, n := 0, 0; n < b.N; i++ {
				p, bt := &parts[i%c.parts], batches[i%len(batches)]
				if err := p.sink.Write(bt); err != nil {
					b.Fatal(err)
				}
				n += len(bt.Events)
				p.next += int64(len(bt.Events))
				if p.sink.Pending().Rows >= int64(c.rows) {
					p.flush(b)
				}
			}
			for i := range parts {
				parts[i].flush(b)
			}
			b.StopTimer()
			b.ReportMetric(float64(dirBytes(b, dir))/float64(b.N), "file-B/event")
		})
	}
}

// BenchmarkPartitions: the whole chain of the reference pipeline but Kafka
// (decode, geo, useragent, pseudonymize, the sink), one chain per
// partition as the workers have, batches of 256 records to the partitions
// in turn, each partition's file closed at a 1,000,000-event run's share,
// one batch shared by them as the workers share theirs. What the number of
// partitions costs without the client's fetches. One op is one record.
func BenchmarkPartitions(b *testing.B) {
	const events, batch = 1_000_000, 256
	recs, size := workload(100_000)
	factory := enrich(b)
	for _, parts := range []int{8, 64} {
		b.Run(fmt.Sprintf("partitions=%d", parts), func(b *testing.B) {
			_, ps := openBenchPartitions(b, parts)
			stages := make([][]pipeline.Stage, parts)
			for i := range stages {
				var err error
				if stages[i], err = factory("events", int32(i)); err != nil {
					b.Fatal(err)
				}
			}
			var bt pipeline.Batch
			b.ReportAllocs()
			b.SetBytes(size / int64(len(recs)))
			b.ResetTimer()
			for i, n := 0, 0; n < b.N; i++ {
				p := &ps[i%parts]
				j := (n % len(recs)) / batch * batch
				k := min(j+batch, len(recs), j+b.N-n)
				fillBatch(&bt, recs[j:k], p.next)
				for _, s := range stages[i%parts] {
					if err := s.Process(context.Background(), &bt); err != nil {
						b.Fatal(err)
					}
				}
				if err := p.sink.Write(&bt); err != nil {
					b.Fatal(err)
				}
				n += k - j
				p.next += int64(k - j)
				if p.sink.Pending().Rows >= events/int64(parts) {
					p.flush(b)
				}
			}
			for i := range ps {
				ps[i].flush(b)
			}
		})
	}
}

// benchPartition is one partition of a benchmark's sink and the offsets
// written to it since its last flush.
type benchPartition struct {
	sink        pipeline.PartitionSink
	first, next int64
}

// flush closes the partition's files over [first, next).
func (p *benchPartition) flush(b *testing.B) {
	if p.next > p.first {
		if _, err := p.sink.Flush(context.Background(), p.first, p.next-1); err != nil {
			b.Fatal(err)
		}
	}
	p.first = p.next
}

// openBenchPartitions opens n partitions of a Parquet sink writing to a
// new directory (returned), building files in a spool as sluice does.
func openBenchPartitions(b *testing.B, n int) (string, []benchPartition) {
	dir := b.TempDir()
	store, err := objstore.NewDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	sink, _ := pqsink.New(store, pqsink.Options{SpoolDir: b.TempDir()})
	ps := make([]benchPartition, n)
	for i := range ps {
		if ps[i].sink, err = sink.OpenPartition("events", int32(i)); err != nil {
			b.Fatal(err)
		}
	}
	return dir, ps
}

// dirBytes is the size of the files under dir.
func dirBytes(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		b.Fatal(err)
	}
	return n
}

// enrich returns the stage chain of the reference pipeline: decode, geo
// (test City database), useragent, pseudonymize.
func enrich(b *testing.B) pipeline.StageFactory {
	return enrichWith(b, testkit.GeoDB(b, testkit.GeoNetworks, 1))
}

// enrichWith is enrich with the GeoIP database at geoPath.
func enrichWith(b *testing.B, geoPath string) pipeline.StageFactory {
	db, err := geo.Open(geoPath, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	cache := useragent.NewCache(0)
	keys := map[string][]byte{"k1": []byte("benchmark-key-0123456789abcdef")}
	return func(string, int32) ([]pipeline.Stage, error) {
		g, err := geo.New(db, geo.Options{})
		if err != nil {
			return nil, err
		}
		ua, _ := useragent.New(cache)
		ps, err := pseudonymize.New(pseudonymize.Options{Keys: keys, Active: "k1"})
		if err != nil {
			return nil, err
		}
		return []pipeline.Stage{decode.New(nil), g, ua, ps}, nil
	}
}

// BenchmarkStages: decode then each enrichment stage over the same
// batches; one op is one record through all of them.
func BenchmarkStages(b *testing.B) {
	stages, err := enrich(b)("events", 0)
	if err != nil {
		b.Fatal(err)
	}
	benchStages(b, stages...)
}

// BenchmarkEndToEnd: a broker preloaded with the workload → the runner
// (decode only, and the full chain) → zstd Parquet files on local disk. One op is one whole run;
// the custom metrics are per event.
func BenchmarkEndToEnd(b *testing.B) {
	decodeOnly := func(string, int32) ([]pipeline.Stage, error) { return []pipeline.Stage{decode.New(nil)}, nil }
	for _, parts := range []int32{1, 8} {
		b.Run(fmt.Sprintf("decode/partitions=%d", parts), func(b *testing.B) { endToEnd(b, parts, 200_000, decodeOnly) })
		b.Run(fmt.Sprintf("full/partitions=%d", parts), func(b *testing.B) { endToEnd(b, parts, 200_000, enrich(b)) })
	}
}

func endToEnd(b *testing.B, partitions int32, n int, stages pipeline.StageFactory) {
	recs, size := workload(n)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "events"))
	if err != nil {
		b.Fatal(err)
	}
	defer kc.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range recs {
		prod.Produce(context.Background(), &kgo.Record{Topic: "events", Value: r}, nil)
	}
	if err := prod.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	prod.Close()
	recs = nil

	b.ReportAllocs()
	b.ResetTimer()
	var wall, cpu time.Duration
	for i := 0; i < b.N; i++ {
		store, err := objstore.NewDir(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		sink, _ := pqsink.New(store, pqsink.Options{})
		r, err := kafka.NewRunner(kafka.Options{
			Brokers: kc.ListenAddrs(), Topics: []string{"events"}, Group: fmt.Sprintf("bench-%d", i),
			RollMaxAge: time.Hour, RollMaxRows: 1_000_000,
		}, stages, sink, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		c0, t0 := cpuTime(), time.Now()
		go func() { done <- r.Run(ctx) }()
		for r.Stats().RecordsIn.Load() < int64(n) {
			time.Sleep(time.Millisecond)
		}
		cancel() // drain: flush every partition, commit
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		wall += time.Since(t0)
		cpu += cpuTime() - c0
		if got := r.Stats().RecordsFlushed.Load(); got != int64(n) {
			b.Fatalf("flushed %d of %d", got, n)
		}
	}
	events := float64(n) * float64(b.N)
	b.ReportMetric(events/wall.Seconds(), "events/s")
	b.ReportMetric(events/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(size)*float64(b.N)/wall.Seconds()/1e6, "input-MB/s")
	b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(0, "ns/op")
}
