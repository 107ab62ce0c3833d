package outage

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestRateLimitedWarnAndOneRecovery(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), "kafka broker", 30*time.Second)
	clock := time.Unix(1_800_000_000, 0)
	l.now = func() time.Time { return clock }
	boom := errors.New("dial tcp 127.0.0.1:9: connect: connection refused")
	for range 100 { // 100 failures over 99 s
		l.Fail("127.0.0.1:9", boom)
		clock = clock.Add(time.Second)
	}
	l.Fail("10.0.0.1:9092", boom) // another address is its own outage
	if !l.Down("127.0.0.1:9") {
		t.Fatal("not down")
	}
	l.OK("127.0.0.1:9")
	l.OK("127.0.0.1:9") // a second success logs nothing
	out := buf.String()
	if n := strings.Count(out, `level=WARN msg="kafka broker unreachable; retrying" addr=127.0.0.1:9`); n != 4 {
		t.Errorf("%d warnings for 99 s of failures, want 4 (at 0, 30, 60, 90 s):\n%s", n, out)
	}
	if !strings.Contains(out, "connection refused") {
		t.Error("the error is not in the warning")
	}
	if n := strings.Count(out, `level=INFO msg="kafka broker reachable again" addr=127.0.0.1:9 failures=100`); n != 1 {
		t.Errorf("%d recovery lines, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "addr=10.0.0.1:9092"); n != 1 || l.Down("127.0.0.1:9") {
		t.Errorf("addresses not kept apart:\n%s", out)
	}
}
