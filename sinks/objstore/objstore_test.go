package objstore

import (
	"context"
	"errors"
	"io"
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

// TestDirPutLinksWholeFiles: a whole file on the store's filesystem is
// linked into place (no copy), replacing an object atomically, also when
// the object already is that file; anything else is copied.
func TestDirPutLinksWholeFiles(t *testing.T) {
	tmp := t.TempDir()
	d, err := NewDir(filepath.Join(tmp, "out"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	spool := func(content string) *os.File {
		f, err := os.CreateTemp(tmp, "spool-*")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if _, err := f.WriteString(content); err != nil {
			t.Fatal(err)
		}
		return f
	}
	put := func(key string, f *os.File, off, n int64) {
		t.Helper()
		if err := d.Put(ctx, key, io.NewSectionReader(f, off, n), n); err != nil {
			t.Fatal(err)
		}
	}
	check := func(key, want string, src *os.File, linked bool) {
		t.Helper()
		b, err := d.Get(ctx, key)
		if err != nil || string(b) != want {
			t.Fatalf("%s: %q %v, want %q", key, b, err, want)
		}
		a, err1 := os.Stat(filepath.Join(d.Root(), key))
		s, err2 := src.Stat()
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if os.SameFile(a, s) != linked {
			t.Errorf("%s: linked %v, want %v", key, !linked, linked)
		}
	}
	const key = "events/date=2026-01-01/hour=00/a.parquet"
	first := spool("first file")
	put(key, first, 0, 10)
	check(key, "first file", first, true)
	// The same file again (a Put repeated after its directory sync
	// failed): a rename onto the same inode does nothing; nothing is left.
	put(key, first, 0, 10)
	check(key, "first file", first, true)
	// Another file replaces it.
	second := spool("second, longer file")
	put(key, second, 0, 19)
	check(key, "second, longer file", second, true)
	// The spool's name goes; the object stays.
	if err := os.Remove(second.Name()); err != nil {
		t.Fatal(err)
	}
	if b, err := d.Get(ctx, key); err != nil || string(b) != "second, longer file" {
		t.Fatalf("after the spool file's removal: %q %v", b, err)
	}
	// Part of a file is copied.
	part := spool("0123456789")
	put("events/part.parquet", part, 2, 5)
	check("events/part.parquet", "23456", part, false)
	put("events/head.parquet", part, 0, 4)
	check("events/head.parquet", "0123", part, false)
	// On another filesystem: copied.
	if shm, err := os.MkdirTemp("/dev/shm", "sluice-objstore-"); err == nil {
		defer os.RemoveAll(shm)
		f, err := os.Create(filepath.Join(shm, "spool"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		f.WriteString("elsewhere")
		put("events/shm.parquet", f, 0, 9)
		check("events/shm.parquet", "elsewhere", f, false)
	}
	err = filepath.WalkDir(d.Root(), func(p string, de os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(de.Name(), ".") {
			t.Errorf("left behind: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
