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
	m, err := syscall.Mmap(-1, 0, 2*RegionSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, err
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(m)))
	head := int((RegionSize - p%RegionSize) % RegionSize)
	r := m[head : head+RegionSize : head+RegionSize]
	syscall.Madvise(r, madvHugepage) // EINVAL without THP: ordinary pages
	return r, nil
}

// madvHugepage is MADV_HUGEPAGE (not in package syscall).
const madvHugepage = 14

// release gives r's pages back to the kernel; its addresses stay mapped
// and read zeros until written again.
func release(r []byte) {
	syscall.Madvise(r, syscall.MADV_DONTNEED)
}
