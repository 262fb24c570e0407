// Package config holds the settings the functions read from their
// environment, with the variable names template.yaml sets.
package config

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ceb179/ceb179"
)

// Environment variable names set by template.yaml.
const (
	EnvRequestsTable    = "REQUESTS_TABLE"
	EnvPaymentsTable    = "PAYMENTS_TABLE"
	EnvAssembleQueueURL = "ASSEMBLE_QUEUE_URL"
	EnvSignQueueURL     = "SIGN_QUEUE_URL"
	EnvSignDLQURL       = "SIGN_DLQ_URL"
	EnvUploadFunction   = "UPLOAD_FUNCTION"
	EnvCustomsUploadURL = "CUSTOMS_UPLOAD_URL"
	EnvRetentionDays    = "RETENTION_DAYS"
	// EnvCustomsSourceCIDRs is the allowlist of customs source networks,
	// comma-separated CIDRs; empty lets everyone call platDataOpen.
	EnvCustomsSourceCIDRs = "CUSTOMS_SOURCE_CIDRS"
	// EnvOrderDailyCap is how many requests per orderNo and China calendar
	// day are signed; empty means ceb179.DefaultDailyCap.
	EnvOrderDailyCap = "ORDER_DAILY_CAP"
	// EnvMissingGraceMinutes is how long a declared order may wait for its
	// payment record before the settler counts it missing; empty means the
	// settler's default (60).
	EnvMissingGraceMinutes = "MISSING_GRACE_MINUTES"
)

// Config is what a function knows about its surroundings.
type Config struct {
	RequestsTable    string
	PaymentsTable    string
	AssembleQueueURL string
	SignQueueURL     string
	SignDLQURL       string
	UploadFunction   string
	CustomsUploadURL string
	// Retention is how long records are kept; zero means the store's default.
	Retention time.Duration
	// SourceAllowlist are the networks allowed to call platDataOpen; empty
	// allows everyone.
	SourceAllowlist []netip.Prefix
	// OrderDailyCap is how many requests per orderNo and China calendar day
	// are signed.
	OrderDailyCap int
	// MissingGrace is how long a declared order may wait for its payment
	// record; zero means the settler's default.
	MissingGrace time.Duration
	// Window is how long customs allows for an upload; zero means
	// ceb179.Window. No environment variable sets it: only the local
	// stack's time-compressed runs (tests, the bench) shorten it.
	Window time.Duration
}

// FromEnv reads the configuration from the environment through getenv
// (os.Getenv when nil) and checks that every variable in required is set.
func FromEnv(getenv func(string) string, required ...string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var missing []string
	for _, name := range required {
		if strings.TrimSpace(getenv(name)) == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return Config{}, fmt.Errorf("config: missing environment variable %s", strings.Join(missing, ", "))
	}
	c := Config{
		RequestsTable:    getenv(EnvRequestsTable),
		PaymentsTable:    getenv(EnvPaymentsTable),
		AssembleQueueURL: getenv(EnvAssembleQueueURL),
		SignQueueURL:     getenv(EnvSignQueueURL),
		SignDLQURL:       getenv(EnvSignDLQURL),
		UploadFunction:   getenv(EnvUploadFunction),
		CustomsUploadURL: getenv(EnvCustomsUploadURL),
	}
	if v := strings.TrimSpace(getenv(EnvRetentionDays)); v != "" {
		days, err := strconv.Atoi(v)
		if err != nil || days <= 0 {
			return Config{}, fmt.Errorf("config: %s must be a positive number of days, not %q", EnvRetentionDays, v)
		}
		if days < 3*365 {
			return Config{}, fmt.Errorf("config: %s is %d; customs data must be kept at least 1095 days (3 years)", EnvRetentionDays, days)
		}
		c.Retention = time.Duration(days) * 24 * time.Hour
	}
	nets, err := ParseCIDRs(getenv(EnvCustomsSourceCIDRs))
	if err != nil {
		return Config{}, fmt.Errorf("config: %s: %w", EnvCustomsSourceCIDRs, err)
	}
	c.SourceAllowlist = nets
	c.OrderDailyCap = ceb179.DefaultDailyCap
	if v := strings.TrimSpace(getenv(EnvOrderDailyCap)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Config{}, fmt.Errorf("config: %s must be a whole number of at least 1, not %q", EnvOrderDailyCap, v)
		}
		c.OrderDailyCap = n
	}
	if v := strings.TrimSpace(getenv(EnvMissingGraceMinutes)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 7*24*60 {
			return Config{}, fmt.Errorf("config: %s must be a whole number of minutes from 1 to 10080, not %q", EnvMissingGraceMinutes, v)
		}
		c.MissingGrace = time.Duration(n) * time.Minute
	}
	return c, nil
}

// ParseCIDRs parses a comma-separated list of networks ("203.0.113.0/24,
// 198.51.100.7/32"); a bare address counts as a single-address network.
// Blank input gives an empty list.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("%q is neither a network nor an address", f)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a network: %w", f, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
