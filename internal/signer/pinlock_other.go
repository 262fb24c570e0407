//go:build !unix && !windows

package signer

import (
	"errors"
	"os"
)

// tryLock fails: without file locks no PIN try can be made exclusive
// across processes, so none is made.
func tryLock(*os.File) (bool, error) {
	return false, errors.New("no file locks on this system: no PIN is sent")
}

// unlockFile does nothing.
func unlockFile(*os.File) {}
