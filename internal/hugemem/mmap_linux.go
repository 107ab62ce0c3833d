package hugemem

import (
	"syscall"
	"unsafe"
)

// mapRegion maps RegionSize bytes aligned to RegionSize (a huge page can
// back only an aligned range) and advises them for huge pages. It maps
// twice the size and uses the aligned half: the rest is address space
// only, never touched.
func mapRegion() ([]byte, error) {
	_, r, err := mapAligned(RegionSize)
	return r, err
}

// mapAligned maps size bytes (a multiple of RegionSize) aligned to
// RegionSize, advised for huge pages: raw is the whole mapping (size plus
// a region, whose unaligned ends are address space only), mem the aligned
// bytes.
func mapAligned(size int) (raw, mem []byte, err error) {
	raw, err = syscall.Mmap(-1, 0, size+RegionSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, nil, err
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(raw)))
	head := int((RegionSize - p%RegionSize) % RegionSize)
	mem = raw[head : head+size : head+size]
	syscall.Madvise(mem, madvHugepage) // EINVAL without THP: ordinary pages
	return raw, mem, nil
}

// madvHugepage is MADV_HUGEPAGE (not in package syscall).
const madvHugepage = 14

// release gives r's pages back to the kernel; its addresses stay mapped
// and read zeros until written again.
func release(r []byte) {
	syscall.Madvise(r, syscall.MADV_DONTNEED)
}

// unmap removes a mapping mapAligned made.
func unmap(raw []byte) error { return syscall.Munmap(raw) }
