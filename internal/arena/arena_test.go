package arena

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	var a Text
	b := []byte("outside")
	s := a.Keep(b)
	b[0] = 'X'
	if s != "outside" {
		t.Errorf("Keep outside a batch aliases its input: %q", s)
	}
	a.Begin()
	x, y := a.Keep([]byte("one")), a.Keep([]byte("two"))
	if a.Keep(nil) != "" || x != "one" || y != "two" {
		t.Errorf("in a batch: %q %q", x, y)
	}
	var none *Text // a stage's arena outside a batch
	if s := none.Keep([]byte("alone")); s != "alone" {
		t.Errorf("Keep on a nil arena: %q", s)
	}
	a.Begin()
	big := a.Keep([]byte(strings.Repeat("b", MaxKept+1)))
	a.Begin()
	if cap(a.buf) != 0 || len(big) != MaxKept+1 {
		t.Errorf("an arena past MaxKept is kept: %d", cap(a.buf))
	}
}
