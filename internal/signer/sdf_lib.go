package signer

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// sdfLib is the part of a GM/T 0018 SDF library that the SDF signer uses,
// one method per C function, each returning the function's code (0 is
// SDR_OK). It is the seam between the signer and the vendor's C library.
// Byte slices are passed as pointers to their first byte and must be
// long enough for what the function writes (see the sizes below).
type sdfLib interface {
	OpenDevice(dev *uintptr) uint32
	CloseDevice(dev uintptr) uint32
	OpenSession(dev uintptr, session *uintptr) uint32
	CloseSession(session uintptr) uint32
	GetPrivateKeyAccessRight(session uintptr, index uint32, password []byte) uint32
	ReleasePrivateKeyAccessRight(session uintptr, index uint32) uint32
	// ExportSignPublicKeyECC writes an ECCrefPublicKey to pub.
	ExportSignPublicKeyECC(session uintptr, index uint32, pub []byte) uint32
	// ExportSignPublicKeyRSA writes an RSArefPublicKey to pub.
	ExportSignPublicKeyRSA(session uintptr, index uint32, pub []byte) uint32
	// InternalSignECC signs the 32-byte digest and writes an ECCSignature
	// to sig.
	InternalSignECC(session uintptr, index uint32, digest, sig []byte) uint32
	// InternalPrivateKeyOperationRSA applies the private key to in and
	// writes the result to out, its length to *outLen.
	InternalPrivateKeyOperationRSA(session uintptr, index uint32, in, out []byte, outLen *uint32) uint32
}

// Sizes of the GM/T 0018 structures the signer hands to the library. The
// buffers are as large as the largest layout any vendor header uses, so a
// library built with other sizes than configured can never write past
// them: ECCrefPublicKey is bits + x + y with 64-byte fields in GM/T
// 0018-2012 (ECCref_MAX_BITS 512) and 32-byte fields in some vendors'
// headers (ECCref_MAX_BITS 256); ECCSignature is r + s in the same fields;
// RSArefPublicKey is bits + m + e with 256-byte fields (RSAref_MAX_BITS
// 2048) or 512-byte ones (4096).
const (
	sdfECCPublicKeySize = 4 + 2*64
	sdfECCSignatureSize = 2 * 64
	sdfRSAPublicKeySize = 4 + 2*512
	sdfRSABlockSize     = 512
)

// The C functions the signer calls, in the order of cLib.fns.
var sdfFuncNames = [...]string{
	"SDF_OpenDevice",
	"SDF_CloseDevice",
	"SDF_OpenSession",
	"SDF_CloseSession",
	"SDF_GetPrivateKeyAccessRight",
	"SDF_ReleasePrivateKeyAccessRight",
	"SDF_ExportSignPublicKey_ECC",
	"SDF_ExportSignPublicKey_RSA",
	"SDF_InternalSign_ECC",
	"SDF_InternalPrivateKeyOperation_RSA",
}

const (
	fnOpenDevice = iota
	fnCloseDevice
	fnOpenSession
	fnCloseSession
	fnAccessRight
	fnReleaseAccessRight
	fnExportECC
	fnExportRSA
	fnSignECC
	fnPrivateRSA
)

// cLib is an sdfLib over a C library loaded at run time: purego's dlopen
// on Linux, LoadLibraryEx on Windows. No cgo is involved.
type cLib struct {
	fns [len(sdfFuncNames)]uintptr
}

var _ sdfLib = (*cLib)(nil)

// libraries keeps each loaded SDF library for the life of the process: a
// vendor library is never unloaded, since a call abandoned on a hung
// device may still be running inside it.
var libraries = struct {
	sync.Mutex
	m map[string]*cLib
}{m: map[string]*cLib{}}

// loadSDFLibrary loads the SDF library at path (an absolute path) once per
// process and finds its functions.
func loadSDFLibrary(path string) (*cLib, error) {
	libraries.Lock()
	defer libraries.Unlock()
	if l := libraries.m[path]; l != nil {
		return l, nil
	}
	h, err := loadLibrary(path)
	if err != nil {
		return nil, fmt.Errorf("load SDF library %s: %w", path, err)
	}
	l := &cLib{}
	for i, name := range sdfFuncNames {
		if l.fns[i], err = librarySymbol(h, name); err != nil || l.fns[i] == 0 {
			return nil, fmt.Errorf("SDF library %s has no %s (is it a GM/T 0018 SDF library?): %v", path, name, err)
		}
	}
	libraries.m[path] = l
	return l, nil
}

// ptr returns the address of b's first byte as a C pointer argument.
func ptr(b []byte) uintptr {
	if len(b) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&b[0]))
}

// The methods below pass Go memory to C. Every buffer is allocated on the
// heap by the signer (Go's heap objects do not move) and kept alive until
// the call returns; C int results are read from the low 32 bits.

// OpenDevice calls SDF_OpenDevice.
func (l *cLib) OpenDevice(dev *uintptr) uint32 {
	r := uint32(cCall(l.fns[fnOpenDevice], uintptr(unsafe.Pointer(dev))))
	runtime.KeepAlive(dev)
	return r
}

// CloseDevice calls SDF_CloseDevice.
func (l *cLib) CloseDevice(dev uintptr) uint32 {
	return uint32(cCall(l.fns[fnCloseDevice], dev))
}

// OpenSession calls SDF_OpenSession.
func (l *cLib) OpenSession(dev uintptr, session *uintptr) uint32 {
	r := uint32(cCall(l.fns[fnOpenSession], dev, uintptr(unsafe.Pointer(session))))
	runtime.KeepAlive(session)
	return r
}

// CloseSession calls SDF_CloseSession.
func (l *cLib) CloseSession(session uintptr) uint32 {
	return uint32(cCall(l.fns[fnCloseSession], session))
}

// GetPrivateKeyAccessRight calls SDF_GetPrivateKeyAccessRight.
func (l *cLib) GetPrivateKeyAccessRight(session uintptr, index uint32, password []byte) uint32 {
	r := uint32(cCall(l.fns[fnAccessRight], session, uintptr(index), ptr(password), uintptr(len(password))))
	runtime.KeepAlive(password)
	return r
}

// ReleasePrivateKeyAccessRight calls SDF_ReleasePrivateKeyAccessRight.
func (l *cLib) ReleasePrivateKeyAccessRight(session uintptr, index uint32) uint32 {
	return uint32(cCall(l.fns[fnReleaseAccessRight], session, uintptr(index)))
}

// ExportSignPublicKeyECC calls SDF_ExportSignPublicKey_ECC.
func (l *cLib) ExportSignPublicKeyECC(session uintptr, index uint32, pub []byte) uint32 {
	r := uint32(cCall(l.fns[fnExportECC], session, uintptr(index), ptr(pub)))
	runtime.KeepAlive(pub)
	return r
}

// ExportSignPublicKeyRSA calls SDF_ExportSignPublicKey_RSA.
func (l *cLib) ExportSignPublicKeyRSA(session uintptr, index uint32, pub []byte) uint32 {
	r := uint32(cCall(l.fns[fnExportRSA], session, uintptr(index), ptr(pub)))
	runtime.KeepAlive(pub)
	return r
}

// InternalSignECC calls SDF_InternalSign_ECC.
func (l *cLib) InternalSignECC(session uintptr, index uint32, digest, sig []byte) uint32 {
	r := uint32(cCall(l.fns[fnSignECC], session, uintptr(index), ptr(digest), uintptr(len(digest)), ptr(sig)))
	runtime.KeepAlive(digest)
	runtime.KeepAlive(sig)
	return r
}

// InternalPrivateKeyOperationRSA calls SDF_InternalPrivateKeyOperation_RSA.
func (l *cLib) InternalPrivateKeyOperationRSA(session uintptr, index uint32, in, out []byte, outLen *uint32) uint32 {
	r := uint32(cCall(l.fns[fnPrivateRSA], session, uintptr(index), ptr(in), uintptr(len(in)), ptr(out), uintptr(unsafe.Pointer(outLen))))
	runtime.KeepAlive(in)
	runtime.KeepAlive(out)
	runtime.KeepAlive(outLen)
	return r
}
