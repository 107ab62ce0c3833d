//go:build race

package arena

func init() { poison = true }
