package objstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/internal/testkit"
)

func newS3(t *testing.T) (*S3, *testkit.S3) {
	t.Helper()
	srv := testkit.StartS3(t)
	srv.SetEnv(t)
	s, err := NewS3(context.Background(), srv.URL("raw/"), S3Options{Endpoint: srv.Endpoint, PathStyle: true, PartSize: 5 << 20, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, srv
}

func TestS3PutGetListMultipart(t *testing.T) {
	s, srv := newS3(t)
	ctx := context.Background()
	small := []byte("hello parquet")
	if err := s.Put(ctx, "events/a.parquet", bytes.NewReader(small), int64(len(small))); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 12<<20+123) // three parts
	rand.Read(big)
	if err := s.Put(ctx, "events/big.parquet", bytes.NewReader(big), int64(len(big))); err != nil {
		t.Fatal(err)
	}
	// Not a ReaderAt: streamed part by part through a buffer.
	if err := s.Put(ctx, "events/stream.parquet", strings.NewReader(string(big)), int64(len(big))); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string][]byte{"events/a.parquet": small, "events/big.parquet": big, "events/stream.parquet": big} {
		got, err := s.Get(ctx, k)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v", k, len(got), err)
		}
		// The object is where the posix backend keeps it, under the prefix.
		if fi, err := os.Stat(filepath.Join(srv.Dir("raw"), k)); err != nil || fi.Size() != int64(len(want)) {
			t.Errorf("%s on disk: %v", k, err)
		}
	}
	keys, err := s.List(ctx, "events/")
	if err != nil || strings.Join(keys, ",") != "events/a.parquet,events/big.parquet,events/stream.parquet" {
		t.Errorf("list %v %v", keys, err)
	}
	if _, err := s.Get(ctx, "events/missing.parquet"); !errors.Is(err, ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

// TestS3ConditionalWrites checks what exactly-once rests on: the server
// honours If-None-Match: * and If-Match, so a stale writer cannot move the
// state.
func TestS3ConditionalWrites(t *testing.T) {
	s, _ := newS3(t)
	ctx := context.Background()
	k := "_sluice/state/g/events/0.json"
	if _, _, err := s.GetVersion(ctx, k); !errors.Is(err, ErrNotExist) {
		t.Fatalf("no state yet: %v", err)
	}
	v1, err := s.PutIf(ctx, k, []byte(`{"next":1}`), "")
	if err != nil || v1 == "" {
		t.Fatalf("create: %q %v", v1, err)
	}
	if _, err := s.PutIf(ctx, k, []byte(`{"next":9}`), ""); !errors.Is(err, ErrPrecondition) {
		t.Errorf("If-None-Match over an existing object: %v", err)
	}
	v2, err := s.PutIf(ctx, k, []byte(`{"next":2}`), v1)
	if err != nil || v2 == v1 {
		t.Fatalf("If-Match update: %q %v", v2, err)
	}
	if _, err := s.PutIf(ctx, k, []byte(`{"next":5}`), v1); !errors.Is(err, ErrPrecondition) {
		t.Errorf("stale If-Match accepted: %v", err)
	}
	b, v, err := s.GetVersion(ctx, k)
	if err != nil || string(b) != `{"next":2}` || v != v2 {
		t.Errorf("state %s %s %v", b, v, err)
	}
}

func TestS3BadBucket(t *testing.T) {
	srv := testkit.StartS3(t)
	srv.SetEnv(t)
	s, err := NewS3(context.Background(), "s3://no-such-bucket/x", S3Options{Endpoint: srv.Endpoint, PathStyle: true, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(context.Background()); err == nil {
		t.Error("missing bucket passed the check")
	}
}
