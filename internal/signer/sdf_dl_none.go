//go:build nosdf || !((linux || windows) && (amd64 || arm64))

package signer

import "fmt"

// errNoSDF says this build cannot load an SDF library.
var errNoSDF = fmt.Errorf("signer: this build of hsmbridge has no SDF support (it is in the linux/amd64, linux/arm64, windows/amd64 and windows/arm64 builds without the nosdf tag)")

func loadLibrary(string) (uintptr, error) { return 0, errNoSDF }

func librarySymbol(uintptr, string) (uintptr, error) { return 0, errNoSDF }

func cCall(uintptr, ...uintptr) uintptr { return 0 }
