package main

import (
	"context"
	"sync"
)

// lifecycle owns the goroutines and resources of one command: every
// goroutine it starts returns when its context ends, and Close cancels the
// context, waits for all of them, and then releases the resources in the
// reverse order of their registration (the runner's spool before the
// stages' GeoIP database, that before the embedded broker).
type lifecycle struct {
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closers []func()
}

func newLifecycle(parent context.Context) *lifecycle {
	ctx, cancel := context.WithCancel(parent)
	return &lifecycle{ctx: ctx, cancel: cancel}
}

// Go runs fn in a goroutine; fn must return once lc.ctx is done.
func (lc *lifecycle) Go(fn func()) { lc.wg.Go(fn) }

// OnClose registers a release for Close, after every goroutine is done.
func (lc *lifecycle) OnClose(fn func()) { lc.closers = append(lc.closers, fn) }

// Close stops everything: cancel, wait for the goroutines, release in
// reverse order. It is called once, deferred by the command.
func (lc *lifecycle) Close() {
	lc.cancel()
	lc.wg.Wait()
	for i := len(lc.closers) - 1; i >= 0; i-- {
		lc.closers[i]()
	}
}
