package customs

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestAck(t *testing.T) {
	now := time.UnixMilli(1533271903898)
	tests := []struct {
		name string
		ack  Ack
		want string
	}{
		{"ok success", SuccessAck(now), `{"code":"10000","message":"","serviceTime":1533271903898}`},
		{"ok bad request", NewAck(CodeBadRequest, "openReq: missing orderNo", now), `{"code":"20001","message":"openReq: missing orderNo","serviceTime":1533271903898}`},
		{"ok message not HTML-escaped", NewAck(CodeFailure, `失败 <"x"> & y`, now), `{"code":"20000","message":"失败 <\"x\"> & y","serviceTime":1533271903898}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.ack.JSON()); got != tt.want {
				t.Errorf("JSON:\n got %s\nwant %s", got, tt.want)
			}
			var back Ack
			if err := json.Unmarshal(tt.ack.JSON(), &back); err != nil || back != tt.ack {
				t.Errorf("decodes to %+v, %v", back, err)
			}
		})
	}
}

func TestCodeFor(t *testing.T) {
	_, parseFailure := ParseOpenReq(formCT, []byte("openReq=x"))
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"ok nil", nil, CodeSuccess},
		{"ok parse error", parseFailure, CodeBadRequest},
		{"ok wrapped parse error", fmt.Errorf("ingest: %w", parseFailure), CodeBadRequest},
		{"ok other error", errors.New("storage down"), CodeFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CodeFor(tt.err); got != tt.want {
				t.Errorf("CodeFor = %s, want %s", got, tt.want)
			}
		})
	}
}
