package config

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestLoadFunction(t *testing.T) {
	t.Setenv("AWS_REGION", "cn-north-1")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_PROFILE", "")
	tests := []struct {
		name     string
		env      map[string]string
		required []string
		wantErr  string
	}{
		{
			name:     "ok settings and clients",
			env:      map[string]string{EnvRequestsTable: "req", EnvSignQueueURL: "http://q", EnvUploadGiveUpMinutes: "60"},
			required: []string{EnvRequestsTable, EnvSignQueueURL},
		},
		{
			name:     "fail required variable missing",
			env:      map[string]string{EnvRequestsTable: "req"},
			required: []string{EnvRequestsTable, EnvSignQueueURL},
			wantErr:  EnvSignQueueURL,
		},
		{
			name:    "fail upload setting out of range",
			env:     map[string]string{EnvCustomsTimeoutSeconds: "600"},
			wantErr: EnvCustomsTimeoutSeconds,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fn, err := LoadFunction(context.Background(), func(k string) string { return tc.env[k] }, "settle", tc.required...)
			if fn.Log == nil || fn.Name != "settle" {
				t.Fatalf("logger %v, name %q: a failed start must still be able to say why", fn.Log, fn.Name)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
				}
				if fn.AWS != nil {
					t.Fatal("clients built although the settings are wrong")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fn.Config.RequestsTable != "req" || fn.Config.SignQueueURL != "http://q" || fn.Upload.GiveUpAfter != time.Hour {
				t.Fatalf("settings %+v %+v", fn.Config, fn.Upload)
			}
			if fn.AWS == nil || fn.AWS.DynamoDB == nil || fn.AWS.SQS == nil || fn.AWS.Config.Region != "cn-north-1" {
				t.Fatalf("clients %+v", fn.AWS)
			}
			if fn.Metrics() == nil {
				t.Fatal("no metrics recorder")
			}
		})
	}
}
