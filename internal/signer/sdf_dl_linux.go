//go:build !nosdf && linux && (amd64 || arm64)

package signer

import "github.com/ebitengine/purego"

// loadLibrary loads the shared library at path with the system's dynamic
// loader. Its dependencies are found the usual way (RPATH,
// LD_LIBRARY_PATH, ld.so.conf).
func loadLibrary(path string) (uintptr, error) {
	return purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
}

// librarySymbol returns the address of the function name in lib.
func librarySymbol(lib uintptr, name string) (uintptr, error) {
	return purego.Dlsym(lib, name)
}

// cCall calls the C function at fn with integer and pointer arguments and
// returns its integer result. Pointers passed as uintptr must point into
// memory the caller keeps alive (see sdfSession).
//
//go:uintptrescapes
func cCall(fn uintptr, args ...uintptr) uintptr {
	r, _, _ := purego.SyscallN(fn, args...)
	return r
}
