//go:build race

package decode

func init() { poisonReuse = true }
