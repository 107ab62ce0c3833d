package parquet

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
)

// Spooling: a file being built goes to local disk row group by row group,
// so memory holds only its open row group and writer buffers, whatever the
// roll size, and the end of a flush does not double it. The upload reads
// the finished file back (S3 multipart reads each part from the file; the
// directory store links it into place when it can, copies it otherwise).
// A spool file is not written after its upload: the link shares it.

// spoolFile is where one output file's bytes go while it is built.
type spoolFile interface {
	io.Writer
	// Len is the number of bytes written.
	Len() int64
	// InMemory tells whether the bytes are held in memory.
	InMemory() bool
	// Reader reads the bytes written (the file must be complete).
	Reader() *io.SectionReader
	// Release drops the bytes; the spoolFile is not used afterwards.
	Release()
}

// memFile keeps a file in memory (no spool directory).
type memFile struct{ bytes.Buffer }

func (m *memFile) Len() int64     { return int64(m.Buffer.Len()) }
func (m *memFile) InMemory() bool { return true }
func (m *memFile) Reader() *io.SectionReader {
	return io.NewSectionReader(bytes.NewReader(m.Bytes()), 0, int64(m.Buffer.Len()))
}
func (m *memFile) Release() { m.Buffer = bytes.Buffer{} }

// diskFile is a file in the spool directory.
type diskFile struct {
	f   *os.File
	n   int64
	err error // the first write error: the file is unusable
}

func (d *diskFile) Write(b []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.f.Write(b)
	d.n += int64(n)
	if err != nil {
		d.err = fmt.Errorf("spool %s: %w", d.f.Name(), err)
	}
	return n, d.err
}

func (d *diskFile) Len() int64                { return d.n }
func (d *diskFile) InMemory() bool            { return false }
func (d *diskFile) Reader() *io.SectionReader { return io.NewSectionReader(d.f, 0, d.n) }
func (d *diskFile) Release() {
	d.f.Close()
	os.Remove(d.f.Name())
}

// spoolDir is one process's directory of files being built, inside the
// configured spool directory. It holds an exclusive lock on its lock file
// while the process lives, so that a later process can tell the
// directories of dead processes (crashed, killed) from those of live ones
// sharing the spool directory, and remove them.
type spoolDir struct {
	dir  string
	lock *os.File
	seq  atomic.Int64
}

const spoolPrefix = "sluice-spool-"

// openSpool makes this process's directory in parent, first removing the
// directories that no live process holds.
func openSpool(parent string) (*spoolDir, error) {
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("spool directory: %w", err)
	}
	old, _ := filepath.Glob(filepath.Join(parent, spoolPrefix+"*"))
	for _, d := range old {
		if l, ok := tryLock(filepath.Join(d, ".lock")); ok {
			os.RemoveAll(d)
			l.Close()
		}
	}
	dir, err := os.MkdirTemp(parent, spoolPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("spool directory: %w", err)
	}
	l, ok := tryLock(filepath.Join(dir, ".lock"))
	if !ok {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("spool directory %s: cannot lock", dir)
	}
	return &spoolDir{dir: dir, lock: l}, nil
}

// tryLock takes an exclusive lock on path without waiting.
func tryLock(path string) (*os.File, bool) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

func (s *spoolDir) create() (*diskFile, error) {
	name := filepath.Join(s.dir, strconv.FormatInt(s.seq.Add(1), 10)+".parquet.part")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return &diskFile{f: f}, nil
}

// close removes the directory and everything in it.
func (s *spoolDir) close() error {
	err := os.RemoveAll(s.dir)
	s.lock.Close()
	return err
}
