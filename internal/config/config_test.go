package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		required []string
		want     Config
		wantErr  string
	}{
		{
			name:     "ok all set",
			env:      map[string]string{EnvRequestsTable: "req", EnvAssembleQueueURL: "http://q", EnvRetentionDays: "1125"},
			required: []string{EnvRequestsTable, EnvAssembleQueueURL},
			want:     Config{RequestsTable: "req", AssembleQueueURL: "http://q", Retention: 1125 * 24 * time.Hour, OrderDailyCap: 5},
		},
		{
			name: "ok retention unset means default",
			env:  map[string]string{EnvPaymentsTable: "pay"},
			want: Config{PaymentsTable: "pay", OrderDailyCap: 5},
		},
		{
			name: "ok allowlist and cap",
			env:  map[string]string{EnvCustomsSourceCIDRs: " 203.0.113.0/24, 198.51.100.7,2001:db8::/32 ", EnvOrderDailyCap: "3"},
			want: Config{OrderDailyCap: 3, SourceAllowlist: []netip.Prefix{
				netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("198.51.100.7/32"), netip.MustParsePrefix("2001:db8::/32")}},
		},
		{
			name: "ok host bits of a network are cleared",
			env:  map[string]string{EnvCustomsSourceCIDRs: "203.0.113.9/24"},
			want: Config{OrderDailyCap: 5, SourceAllowlist: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}},
		},
		{
			name:    "fail allowlist entry not a network",
			env:     map[string]string{EnvCustomsSourceCIDRs: "203.0.113.0/24,customs"},
			wantErr: `"customs" is neither a network nor an address`,
		},
		{
			name:    "fail cap zero",
			env:     map[string]string{EnvOrderDailyCap: "0"},
			wantErr: "at least 1",
		},
		{
			name:     "fail missing names every variable",
			env:      map[string]string{},
			required: []string{EnvRequestsTable, EnvAssembleQueueURL},
			wantErr:  "REQUESTS_TABLE, ASSEMBLE_QUEUE_URL",
		},
		{
			name:    "fail retention not a number",
			env:     map[string]string{EnvRetentionDays: "three years"},
			wantErr: "positive number of days",
		},
		{
			name:    "fail retention below three years",
			env:     map[string]string{EnvRetentionDays: "30"},
			wantErr: "at least 1095 days",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromEnv(func(k string) string { return tt.env[k] }, tt.required...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("FromEnv = %+v, want %+v", got, tt.want)
			}
		})
	}
}
