package hugemem

import (
	"bytes"
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b[:1]))) }

// emptySpares gives every backed spare region back to the kernel and
// forgets the spares (their address space stays mapped: tests only), so
// that a test starts without other tests' regions ahead of its own.
func emptySpares() {
	spare.Lock()
	defer spare.Unlock()
	for _, mem := range spare.backed {
		release(mem)
		backed(-RegionSize)
	}
	spare.backed, spare.released = nil, nil
}

// TestLendAndReuse: blocks are the class's size, lie in aligned regions,
// never overlap while lent (each keeps the bytes written into it), fill a
// region before the next is mapped, and come back for reuse; an emptied
// region is carved again by another class.
func TestLendAndReuse(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("regions are mapped on Linux only")
	}
	emptySpares()
	c := NewClass(64 << 10)
	per := RegionSize / c.Size()
	var lent [][]byte
	for i := range 3*per + 1 {
		b := c.Get()
		if len(b) != c.Size() || cap(b) != c.Size() {
			t.Fatalf("block of len %d cap %d, want %d", len(b), cap(b), c.Size())
		}
		for j := range b {
			b[j] = byte(i)
		}
		lent = append(lent, b)
	}
	if s := c.Stats(); s.Regions != 4 || s.Lent != 3*per+1 {
		t.Fatalf("stats %+v, want 4 regions and %d lent", s, 3*per+1)
	}
	bases := map[uintptr]int{}
	for i, b := range lent {
		if !bytes.Equal(b, bytes.Repeat([]byte{byte(i)}, len(b))) {
			t.Fatalf("block %d was overwritten: its blocks overlap", i)
		}
		bases[addr(b)&^(RegionSize-1)]++
	}
	for base, n := range bases {
		if base%RegionSize != 0 || n > per {
			t.Fatalf("region %#x holds %d blocks (at most %d)", base, n, per)
		}
	}
	// A block put back is the next one lent.
	c.Put(lent[5])
	if b := c.Get(); addr(b) != addr(lent[5]) {
		t.Fatal("a free block of a partial region was not lent first")
	}
	for _, b := range lent {
		c.Put(b)
	}
	if s := c.Stats(); s.Lent != 0 || s.Regions != 0 {
		t.Fatalf("after every Put: %+v", s)
	}
	if kept, _ := Spare(); kept != 4 {
		t.Fatalf("%d spare regions backed, want the 4 emptied", kept)
	}
	o := NewClass(16 << 10)
	b := o.Get()
	defer o.Put(b)
	if bases[addr(b)&^(RegionSize-1)] == 0 {
		t.Error("another class mapped a new region while emptied ones were spare")
	}
}

// TestIdleRegionsReleased: regions emptied beyond idleCap() go back
// to the kernel (their bytes read zero after) and are lent again.
func TestIdleRegionsReleased(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("regions are mapped on Linux only")
	}
	emptySpares()
	c := NewClass(RegionSize) // one block a region
	keep := idleCap()
	n := keep + 4
	var lent [][]byte
	for range n {
		b := c.Get()
		b[0], b[len(b)-1] = 1, 1
		lent = append(lent, b)
	}
	for _, b := range lent {
		c.Put(b)
	}
	kept, released := Spare()
	if s := c.Stats(); kept != keep || released != n-keep || s.Lent != 0 || s.Regions != 0 {
		t.Fatalf("stats %+v, spares %d backed, %d given back: want %d of %d empty regions given back", s, kept, released, n-keep, n)
	}
	zeroed := 0
	for range n {
		b := c.Get()
		if b[0] == 0 && b[len(b)-1] == 0 {
			zeroed++
		}
		defer c.Put(b)
	}
	if zeroed != n-keep {
		t.Errorf("%d blocks read zero, %d regions were given back", zeroed, n-keep)
	}
	if s := c.Stats(); s.Regions != n {
		t.Errorf("regions lent again: %+v, want %d regions", s, n)
	}
	if kept, released := Spare(); kept != 0 || released != 0 {
		t.Errorf("spares after: %d backed, %d given back; want none", kept, released)
	}
}

// TestIdleCap: the empty regions kept follow the Go memory limit its
// owner set: a thirty-second of it, at least MinIdleRegions, at most
// MaxIdleRegions.
func TestIdleCap(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(prev)
	for _, c := range []struct {
		limit int64
		want  int
	}{
		{256 << 20 / 5 * 4, MinIdleRegions}, // sluice in a 256 MiB container
		{1280 << 20, 20},                    // sluice without one
		{64 << 30, MaxIdleRegions},
		{math.MaxInt64, MaxIdleRegions}, // no limit
	} {
		debug.SetMemoryLimit(c.limit)
		if got := idleCap(); got != c.want {
			t.Errorf("limit %d: %d idle regions kept, want %d", c.limit, got, c.want)
		}
	}
}

// TestClassOf: the smallest shared class that holds n bytes, the same
// for every caller; none over a region.
func TestClassOf(t *testing.T) {
	for _, c := range []struct{ n, want int }{
		{1, 4096}, {4096, 4096}, {4097, 8192}, {927_232, 1 << 20}, {RegionSize, RegionSize}, {RegionSize + 1, 0},
	} {
		got := ClassOf(c.n)
		if c.want == 0 {
			if got != nil {
				t.Errorf("ClassOf(%d) is a class of %d, want none", c.n, got.Size())
			}
			continue
		}
		if got == nil || got.Size() != c.want || ClassOf(c.want) != got {
			t.Errorf("ClassOf(%d) = %v, want the shared class of %d", c.n, got, c.want)
		}
	}
}

// TestPutWrongSize: a block of another class is a programming error.
func TestPutWrongSize(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Put of a 4 KiB block into the 8 KiB class did not panic")
		}
	}()
	NewClass(8192).Put(make([]byte, 4096))
}

// TestConcurrent (-race): goroutines lend and put back blocks of one
// class at once; no block is lent twice at a time.
func TestConcurrent(t *testing.T) {
	c := NewClass(16 << 10)
	var wg sync.WaitGroup
	var mu sync.Mutex
	out := map[uintptr]bool{}
	for range 4 {
		wg.Go(func() {
			var mine [][]byte
			for i := range 3000 {
				if i%3 == 2 && len(mine) > 0 {
					b := mine[len(mine)-1]
					mine = mine[:len(mine)-1]
					mu.Lock()
					delete(out, addr(b))
					mu.Unlock()
					c.Put(b)
					continue
				}
				b := c.Get()
				mu.Lock()
				if out[addr(b)] {
					t.Error("a block lent twice")
				}
				out[addr(b)] = true
				mu.Unlock()
				mine = append(mine, b)
			}
			for _, b := range mine {
				mu.Lock()
				delete(out, addr(b))
				mu.Unlock()
				c.Put(b)
			}
		})
	}
	wg.Wait()
	if s := c.Stats(); s.Lent != 0 {
		t.Errorf("%d blocks still lent", s.Lent)
	}
}

// BenchmarkFirstTouch: writing into memory never touched before, 32 MiB
// an op in 64 KiB blocks, from the Go heap (4 KiB pages) and from regions.
// Every block is kept to the end, so that each op meets new memory as a
// growing row group does (the heap would otherwise reuse the last op's).
// Run it with -benchtime 10x: one op is 32 MiB.
func BenchmarkFirstTouch(b *testing.B) {
	const total, size = 32 << 20, 64 << 10
	for _, name := range []string{"heap", "hugemem"} {
		b.Run(name, func(b *testing.B) {
			c := NewClass(size)
			get := c.Get
			if name == "heap" {
				get = func() []byte { return make([]byte, size) }
			}
			var keep [][]byte
			var ru0, ru1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			for range b.N {
				for range total / size {
					blk := get()
					for i := 0; i < len(blk); i += 4096 {
						blk[i] = 1
					}
					keep = append(keep, blk)
				}
			}
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			b.ReportMetric(float64(ru1.Minflt-ru0.Minflt)/float64(b.N)/32, "faults/MiB")
			b.ReportMetric(float64(ru1.Stime.Nano()+ru1.Utime.Nano()-ru0.Stime.Nano()-ru0.Utime.Nano())/float64(b.N)/32, "cpu-ns/MiB")
			b.StopTimer()
			if name == "hugemem" {
				for _, blk := range keep {
					c.Put(blk)
				}
			}
		})
	}
}

// TestMemoryLimitCounted: with a Go memory limit set, regions backed take
// their bytes off it and regions given back return them; without one the
// limit stays off.
func TestMemoryLimitCounted(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("regions are mapped on Linux only")
	}
	const base = 1 << 30
	prev := debug.SetMemoryLimit(base)
	defer debug.SetMemoryLimit(prev)
	emptySpares() // every Get maps a region
	c := NewClass(RegionSize)
	var lent [][]byte
	for range idleCap() + 3 {
		lent = append(lent, c.Get())
		if got, want := debug.SetMemoryLimit(-1), int64(base)-Backed(); got != want {
			t.Fatalf("limit %d with %d bytes backed, want %d", got, Backed(), want)
		}
	}
	high := Backed()
	for _, b := range lent {
		c.Put(b)
	}
	if Backed() >= high {
		t.Fatalf("backed %d after giving regions back, %d before", Backed(), high)
	}
	if got, want := debug.SetMemoryLimit(-1), int64(base)-Backed(); got != want {
		t.Fatalf("limit %d after regions were given back, want %d", got, want)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	b := c.Get()
	defer c.Put(b)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("no limit set, but the runtime's is %d now", got)
	}
}

// TestBig: MapBig maps whole regions, aligned and zeroed, counted in
// Backed until Free (once; a second Free and a nil Big's do nothing), and
// a Big dropped without Free is unmapped by its cleanup.
func TestBig(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("mapped on Linux only")
	}
	if MapBig(RegionSize-1) != nil {
		t.Error("a Big under a region")
	}
	base := Backed()
	const n = 3*RegionSize/2 + 5
	b := MapBig(n)
	if b == nil {
		t.Fatal("MapBig failed")
	}
	mem := b.Bytes()
	if len(mem) != n || uintptr(unsafe.Pointer(&mem[0]))%RegionSize != 0 {
		t.Fatalf("%d bytes at %p, want %d aligned to a region", len(mem), &mem[0], n)
	}
	for i := 0; i < n; i += 4096 {
		if mem[i] != 0 {
			t.Fatalf("byte %d is %d", i, mem[i])
		}
		mem[i] = 1
	}
	if got := Backed() - base; got != 2*RegionSize {
		t.Errorf("backed %d, want two regions", got)
	}
	b.Free()
	b.Free()
	(*Big)(nil).Free()
	if b.Bytes() != nil || Backed() != base {
		t.Errorf("after Free: %d bytes, backed %d more", len(b.Bytes()), Backed()-base)
	}
	MapBig(n).Bytes()[0] = 1 // dropped
	for i := 0; i < 100 && Backed() != base; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if Backed() != base {
		t.Errorf("a dropped Big is still backed: %d bytes", Backed()-base)
	}
}
