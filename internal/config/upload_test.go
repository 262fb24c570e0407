package config

import (
	"testing"
	"time"
)

func TestUploadFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Upload
		ok   bool
	}{
		{name: "ok defaults", env: map[string]string{}, ok: true},
		{name: "ok all set", env: map[string]string{EnvCustomsCAFile: "/opt/ca.pem", EnvCustomsTimeoutSeconds: "8", EnvUploadGiveUpMinutes: "45"},
			want: Upload{CAFile: "/opt/ca.pem", Timeout: 8 * time.Second, GiveUpAfter: 45 * time.Minute}, ok: true},
		{name: "fail zero timeout", env: map[string]string{EnvCustomsTimeoutSeconds: "0"}},
		{name: "fail timeout beyond the window", env: map[string]string{EnvCustomsTimeoutSeconds: "600"}},
		{name: "fail give-up not a number", env: map[string]string{EnvUploadGiveUpMinutes: "30m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := UploadFromEnv(func(k string) string { return tt.env[k] })
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if got != tt.want {
				t.Errorf("UploadFromEnv = %+v, want %+v", got, tt.want)
			}
		})
	}
}
