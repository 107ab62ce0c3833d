package objstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDirPutGetList(t *testing.T) {
	d, err := NewDir(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, k := range []string{"events/date=2026-01-01/hour=00/a.parquet", "events/date=2026-01-01/hour=00/a.parquet", "rejected/b.parquet"} {
		if err := d.Put(ctx, k, strings.NewReader("data:"+k), int64(len("data:"+k))); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := d.List(ctx, "events/")
	if err != nil || len(keys) != 1 || keys[0] != "events/date=2026-01-01/hour=00/a.parquet" {
		t.Fatalf("list: %v %v", keys, err)
	}
	b, err := d.Get(ctx, "rejected/b.parquet")
	if err != nil || string(b) != "data:rejected/b.parquet" {
		t.Fatalf("get: %q %v", b, err)
	}
	if _, err := d.Get(ctx, "nope"); !errors.Is(err, ErrNotExist) {
		t.Errorf("missing key: %v", err)
	}
	// A short write leaves nothing behind, not even the temporary file.
	if err := d.Put(ctx, "short.parquet", strings.NewReader("abc"), 10); err == nil {
		t.Error("short write accepted")
	}
	entries, _ := os.ReadDir(d.Root())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || e.Name() == "short.parquet" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	for _, bad := range []string{"", "/abs", "../escape", "a/../../b"} {
		if err := d.Put(ctx, bad, strings.NewReader(""), 0); err == nil {
			t.Errorf("key %q accepted", bad)
		}
	}
}

func TestUnwritableDirIsAClearError(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, []byte("x"), 0o644)
	_, err := NewDir(filepath.Join(f, "sub"))
	if err == nil || !strings.Contains(err.Error(), "output directory") {
		t.Fatalf("want a clear output directory error, got %v", err)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	if s, err := Open(context.Background(), "file://"+dir, S3Options{}); err != nil || s.String() != "file://"+dir {
		t.Errorf("open file url: %v %v", s, err)
	}
	for _, u := range []string{"ftp://x/y", "file://host/x", "file://"} {
		if _, err := Open(context.Background(), u, S3Options{}); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
}

func TestDirPutIf(t *testing.T) {
	d, _ := NewDir(t.TempDir())
	ctx := context.Background()
	k := "_sluice/state/g/events/0.json"
	if _, _, err := d.GetVersion(ctx, k); !errors.Is(err, ErrNotExist) {
		t.Fatalf("missing state: %v", err)
	}
	v1, err := d.PutIf(ctx, k, []byte(`{"next":1}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.PutIf(ctx, k, []byte(`{"next":9}`), ""); !errors.Is(err, ErrPrecondition) {
		t.Errorf("create over an existing object: %v", err)
	}
	v2, err := d.PutIf(ctx, k, []byte(`{"next":2}`), v1)
	if err != nil || v2 == v1 {
		t.Fatalf("update: %v %v", v2, err)
	}
	// A zombie holding v1 cannot move the state.
	if _, err := d.PutIf(ctx, k, []byte(`{"next":5}`), v1); !errors.Is(err, ErrPrecondition) {
		t.Errorf("stale version accepted: %v", err)
	}
	b, v, err := d.GetVersion(ctx, k)
	if err != nil || string(b) != `{"next":2}` || v != v2 {
		t.Errorf("state %s %s %v", b, v, err)
	}
}
