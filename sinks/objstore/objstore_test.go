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
	if s, err := Open("file://" + dir); err != nil || s.String() != "file://"+dir {
		t.Errorf("open file url: %v %v", s, err)
	}
	for _, u := range []string{"ftp://x/y", "file://host/x", "file://"} {
		if _, err := Open(u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
}
