//go:build !linux

package hugemem

import "errors"

var errLinuxOnly = errors.New("hugemem: Linux only")

// mapAligned: only Linux maps memory here; elsewhere the Go heap lends it.
func mapAligned(int) (raw, mem []byte, err error) { return nil, nil, errLinuxOnly }

func mapRegion() ([]byte, error) { return nil, errLinuxOnly }

func release([]byte) {}

func unmap([]byte) error { return errLinuxOnly }
