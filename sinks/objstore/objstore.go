// Package objstore is sluice's access to object storage: the Store contract
// and its implementations (a local directory; S3 follows the same contract).
package objstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrNotExist is returned by Get for a key that has no object.
var ErrNotExist = errors.New("object does not exist")

// ErrPrecondition is returned by PutIf when the object is not at the
// expected version: another writer moved it.
var ErrPrecondition = errors.New("object changed under us (precondition failed)")

// Store is an object store rooted at a URL. Keys are slash-separated paths
// relative to the root, without a leading slash.
type Store interface {
	// Put writes the object key with the size bytes read from r. It
	// replaces an existing object atomically: a reader sees the old or the
	// new object, never a part of either. The object is durable when Put
	// returns nil; on error no partial object is visible.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get returns the content of key, or an error wrapping ErrNotExist.
	Get(ctx context.Context, key string) ([]byte, error)
	// List returns the keys under prefix, in lexical order.
	List(ctx context.Context, prefix string) ([]string, error)
	// GetVersion returns the content of key and its version (an opaque
	// token, the ETag on S3), or an error wrapping ErrNotExist.
	GetVersion(ctx context.Context, key string) (data []byte, version string, err error)
	// PutIf writes key only if it is still at version ("" means: only if
	// it does not exist) and returns the new version. A mismatch is an
	// error wrapping ErrPrecondition and changes nothing. Durable on return.
	PutIf(ctx context.Context, key string, data []byte, version string) (string, error)
	// String names the store root for logs and errors.
	String() string
}

// Open returns the store for a sink URL: file:///abs/path or
// s3://bucket/prefix (with o).
func Open(ctx context.Context, rawURL string, o S3Options) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("sink url %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("sink url %q: file URLs take no host (use file:///abs/path)", rawURL)
		}
		if u.Path == "" {
			return nil, fmt.Errorf("sink url %q: no path", rawURL)
		}
		return NewDir(u.Path)
	case "s3":
		return NewS3(ctx, rawURL, o)
	default:
		return nil, fmt.Errorf("sink url %q: unsupported scheme %q (supported: file, s3)", rawURL, u.Scheme)
	}
}

// Dir is a Store in a local directory. Put writes to a hidden temporary
// file next to the target, fsyncs it, renames it into place and fsyncs the
// directory, so an object appears whole or not at all, even on power loss.
// Given a whole file on the same filesystem (the sink's spool files), Put
// fsyncs it and hard-links it into place instead of copying its bytes.
type Dir struct {
	root string
}

// NewDir returns a Store rooted at dir, creating it if needed. It fails if
// the directory cannot be created or written.
func NewDir(dir string) (*Dir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	probe, err := os.CreateTemp(abs, ".sluice-probe-*")
	if err != nil {
		return nil, fmt.Errorf("output directory %s is not writable: %w", abs, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return &Dir{root: abs}, nil
}

// String implements Store.
func (d *Dir) String() string { return "file://" + d.root }

// Root is the directory the store writes under.
func (d *Dir) Root() string { return d.root }

func (d *Dir) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "..") {
		return "", fmt.Errorf("invalid object key %q", key)
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Put implements Store.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := d.path(key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if src := wholeFile(r, size); src != nil {
		linked, err := d.link(src, p)
		if err != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
		if linked {
			return nil
		}
	}
	// Hidden and without the .parquet suffix: loaders never pick it up.
	f, err := os.CreateTemp(dir, "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, r)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("put %s: wrote %d bytes, want %d", key, n, size)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("put %s: fsync: %w", key, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err = os.Rename(tmp, p); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err = syncDir(dir); err != nil {
		return fmt.Errorf("put %s: fsync dir: %w", key, err)
	}
	return nil
}

// wholeFile is the file r reads when r reads all of a regular file, as
// the sink's spool files are handed to Put (an io.SectionReader over the
// *os.File from offset 0 to its end, size bytes); nil otherwise.
func wholeFile(r io.Reader, size int64) *os.File {
	sr, ok := r.(*io.SectionReader)
	if !ok {
		return nil
	}
	ra, off, n := sr.Outer()
	f, ok := ra.(*os.File)
	if !ok || off != 0 || n != size {
		return nil
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() != size {
		return nil
	}
	return f
}

// link puts the complete file src at p without copying it: src's data is
// synced, a hard link to it is made (at p, or at a hidden temporary name
// renamed over an existing p) and the directory is synced. ok is false
// with a nil error when no link can be made (src on another filesystem,
// one without hard links): the caller copies instead. The link shares
// src's inode, so src must not be written afterwards; removing src's name
// leaves the object.
func (d *Dir) link(src *os.File, p string) (ok bool, err error) {
	if err := src.Sync(); err != nil {
		return false, fmt.Errorf("fsync: %w", err)
	}
	dir := filepath.Dir(p)
	err = os.Link(src.Name(), p)
	if errors.Is(err, os.ErrExist) {
		// Replacing an object (a range written again after a restart):
		// link beside it and rename over it, atomically. The name is
		// random, like CreateTemp's (processes of other containers
		// writing to this directory may have this one's pid).
		tmp := filepath.Join(dir, fmt.Sprintf(".%s.tmp-link-%016x", filepath.Base(p), rand.Uint64()))
		if err = os.Link(src.Name(), tmp); err != nil {
			return false, nil
		}
		err = os.Rename(tmp, p)
		// Also after a rename: one onto a link to the same file (a Put
		// repeated after its directory sync failed) does nothing and
		// leaves tmp.
		os.Remove(tmp)
		if err != nil {
			return false, nil
		}
	} else if err != nil {
		return false, nil
	}
	if err := syncDir(dir); err != nil {
		return true, fmt.Errorf("fsync dir: %w", err)
	}
	return true, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Get implements Store.
func (d *Dir) Get(ctx context.Context, key string) ([]byte, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("get %s: %w", key, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return b, nil
}

// version of a directory object: a hash of its content.
func contentVersion(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// GetVersion implements Store.
func (d *Dir) GetVersion(ctx context.Context, key string) ([]byte, string, error) {
	b, err := d.Get(ctx, key)
	if err != nil {
		return nil, "", err
	}
	return b, contentVersion(b), nil
}

// PutIf implements Store. Writers on one machine serialize on an exclusive
// flock of <root>/.sluice-cas.lock, across processes, so check-and-write is
// atomic; the content hash is the version.
func (d *Dir) PutIf(ctx context.Context, key string, data []byte, version string) (string, error) {
	p, err := d.path(key)
	if err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(d.root, ".sluice-cas.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("put-if %s: %w", key, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("put-if %s: lock: %w", key, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	cur, err := os.ReadFile(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if version != "" {
			return "", fmt.Errorf("put-if %s: expected version %s, object does not exist: %w", key, version, ErrPrecondition)
		}
	case err != nil:
		return "", fmt.Errorf("put-if %s: %w", key, err)
	default:
		if have := contentVersion(cur); have != version {
			return "", fmt.Errorf("put-if %s: expected version %q, found %s: %w", key, version, have, ErrPrecondition)
		}
	}
	if err := d.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		return "", err
	}
	return contentVersion(data), nil
}

// List implements Store. Temporary files of unfinished Puts are skipped.
func (d *Dir) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	err := filepath.WalkDir(d.root, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() || strings.HasPrefix(de.Name(), ".") {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	return keys, nil // WalkDir visits in lexical order
}
