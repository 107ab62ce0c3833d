package main

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
)

// TestLifecycleOrder: Close cancels, waits for every goroutine, then
// releases in reverse order of registration, so nothing is released while
// a goroutine may still use it.
func TestLifecycleOrder(t *testing.T) {
	lc := newLifecycle(context.Background())
	var running atomic.Int32
	var order []string
	for range 3 {
		running.Add(1)
		lc.Go(func() {
			<-lc.ctx.Done()
			running.Add(-1)
		})
	}
	for _, name := range []string{"broker", "stages", "spool"} {
		lc.OnClose(func() {
			if n := running.Load(); n != 0 {
				t.Errorf("%s released with %d goroutines running", name, n)
			}
			order = append(order, name)
		})
	}
	lc.Close()
	if !slices.Equal(order, []string{"spool", "stages", "broker"}) {
		t.Errorf("released in order %v", order)
	}
}
