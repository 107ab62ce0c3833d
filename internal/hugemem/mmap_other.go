//go:build !linux

package hugemem

import "errors"

// mapRegion: only Linux maps regions; elsewhere the Go heap lends blocks.
func mapRegion() ([]byte, error) { return nil, errors.New("hugemem: Linux only") }

func release([]byte) {}
