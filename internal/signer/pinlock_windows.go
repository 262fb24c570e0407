//go:build windows

package signer

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockOffset places the locked byte far beyond the file's content, so that
// the lock (mandatory on Windows) never stands in the way of reading the
// record.
const lockOffset = 0x7FFFFFFF

// tryLock takes an exclusive lock on f without waiting and reports
// whether it got it. The lock ends when f is closed or the process ends.
func tryLock(f *os.File) (bool, error) {
	ol := windows.Overlapped{OffsetHigh: lockOffset}
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return false, nil
	}
	return err == nil, err
}

// unlockFile lets a lock taken by tryLock go.
func unlockFile(f *os.File) {
	ol := windows.Overlapped{OffsetHigh: lockOffset}
	_ = windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, &ol)
}
