package parquet

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// Hex text has no matches but 4 bits of entropy per byte: every level must
// code its literals (klauspost's fastest and default stored it raw, larger
// than it went in), and decode it back unchanged.
func TestZstdCodesLiterals(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	raw := make([]byte, 16<<10)
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	src := []byte(hex.EncodeToString(raw)) // 32 KiB, like one page
	for _, level := range []string{"fastest", "default", "better", "best"} {
		c, err := codec("zstd", level)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := c.Encode(nil, src)
		if err != nil {
			t.Fatal(err)
		}
		if len(enc) > len(src)*6/10 {
			t.Errorf("%s: %d hex bytes compressed to %d", level, len(src), len(enc))
		}
		dec, err := c.Decode(nil, enc)
		if err != nil || !bytes.Equal(dec, src) {
			t.Errorf("%s: decode: %v", level, err)
		}
	}
}
