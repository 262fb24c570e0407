//go:build !nosdf && windows && (amd64 || arm64)

package signer

import (
	"syscall"

	"golang.org/x/sys/windows"
)

// loadLibrary loads the DLL at path (an absolute path). Its dependencies
// are looked for in its own folder first, where vendors install them.
func loadLibrary(path string) (uintptr, error) {
	h, err := windows.LoadLibraryEx(path, 0, windows.LOAD_WITH_ALTERED_SEARCH_PATH)
	return uintptr(h), err
}

// librarySymbol returns the address of the function name in lib.
func librarySymbol(lib uintptr, name string) (uintptr, error) {
	return windows.GetProcAddress(windows.Handle(lib), name)
}

// cCall calls the C function at fn with integer and pointer arguments and
// returns its integer result. Pointers passed as uintptr must point into
// memory the caller keeps alive (see sdfSession).
//
//go:uintptrescapes
func cCall(fn uintptr, args ...uintptr) uintptr {
	r, _, _ := syscall.SyscallN(fn, args...)
	return r
}
