//go:build race

package useragent

func init() { corpusStride = 25 }
