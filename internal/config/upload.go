package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Optional settings of the upload function. Unset means the default.
const (
	// EnvCustomsCAFile names a PEM bundle of extra CAs to trust for the
	// customs endpoint, in addition to the system roots. TLS verification
	// itself cannot be turned off.
	EnvCustomsCAFile = "CUSTOMS_CA_FILE"
	// EnvCustomsTimeoutSeconds bounds one post to customs (default 10).
	EnvCustomsTimeoutSeconds = "CUSTOMS_TIMEOUT_SECONDS"
	// EnvUploadGiveUpMinutes is how long after the deadline an unanswered
	// upload is still retried before the session becomes FAILED (default 1440,
	// a day; at most 4320, three days: the sign queue keeps jobs four days).
	EnvUploadGiveUpMinutes = "UPLOAD_GIVE_UP_MINUTES"
)

// Upload holds the upload function's optional settings; zero values mean
// the defaults of packages customsapi and upload.
type Upload struct {
	// CAFile is the extra CA bundle for the customs endpoint.
	CAFile string
	// Timeout bounds one post to customs.
	Timeout time.Duration
	// GiveUpAfter bounds the late retries after the deadline, and is the
	// settler's give-up window too.
	GiveUpAfter time.Duration
	// LatePace is the least time between late posts; zero means the upload
	// policy's pacing. No environment variable sets it: only the local
	// stack's time-compressed drills shorten it.
	LatePace time.Duration
}

// UploadFromEnv reads the upload function's optional settings through
// getenv (os.Getenv when nil).
func UploadFromEnv(getenv func(string) string) (Upload, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	u := Upload{CAFile: strings.TrimSpace(getenv(EnvCustomsCAFile))}
	for _, f := range []struct {
		name string
		unit time.Duration
		max  int
		dst  *time.Duration
	}{
		{EnvCustomsTimeoutSeconds, time.Second, 60, &u.Timeout},
		{EnvUploadGiveUpMinutes, time.Minute, 3 * 24 * 60, &u.GiveUpAfter},
	} {
		v := strings.TrimSpace(getenv(f.name))
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > f.max {
			return Upload{}, fmt.Errorf("config: %s must be a whole number from 1 to %d, not %q", f.name, f.max, v)
		}
		*f.dst = time.Duration(n) * f.unit
	}
	return u, nil
}
