package signer

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestEPortReplyKinds reads control replies to a call that carried the PIN
// and to one that did not. Only a known reader or control error (and no
// PIN marker) spares a PIN-bearing failure from counting as a refused PIN;
// a PIN-free call is never a refused PIN.
func TestEPortReplyKinds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reply   string
		withPIN error // kind for a PIN-bearing call; nil means success
		noPIN   error // kind for a PIN-free call
	}{
		{"ok signed", `{"_id":1,"_status":"00","_args":{"Result":true,"Data":["c2ln","01"],"Error":[]}}`, nil, nil},
		{"fail reader reset 50070", `{"_id":1,"_status":"00","_args":{"Result":false,"Error":["[读卡器底层库]复位读卡器失败:错误码=50070","Err:Custom50070"]}}`, ErrDevice, ErrDevice},
		{"fail reader open 50200", `{"_id":1,"_args":{"Result":false,"Error":["Err:Custom50200"]}}`, ErrDevice, ErrDevice},
		{"fail control unreachable 60408", `{"_id":1,"_args":{"Result":false,"Error":["Err:Base60408"]}}`, ErrUnavailable, ErrDevice},
		{"fail crypto device wording", `{"_id":1,"_args":{"Result":false,"Error":["打开密码设备失败"]}}`, ErrDevice, ErrDevice},
		{"fail code inside a longer number is unknown", `{"_id":1,"_args":{"Result":false,"Error":["Err:Custom500701"]}}`, ErrPINRefused, ErrDevice},
		{"fail reader code next to a PIN word", `{"_id":1,"_args":{"Result":false,"Error":["50070 口令错误"]}}`, ErrPINRefused, ErrDevice},
		{"fail code only", `{"_id":1,"_args":{"Result":false,"Error":["Err:Custom30015"]}}`, ErrPINRefused, ErrDevice},
		{"fail remaining tries", `{"_id":1,"_args":{"Result":false,"Error":["校验失败,剩余重试次数:7"]}}`, ErrPINRefused, ErrDevice},
		{"fail status word", `{"_id":1,"_args":{"Result":false,"Error":["SW=63C7"]}}`, ErrPINRefused, ErrDevice},
		{"fail status 01 with an error", `{"_id":1,"_status":"01","_args":{"Result":false,"Error":["口令错误"]}}`, ErrPINRefused, ErrDevice},
		{"fail status 01 with Result true", `{"_id":1,"_status":"01","_args":{"Result":true,"Data":["c2ln"],"Error":[]}}`, ErrPINRefused, ErrDevice},
		{"fail Result true with an error", `{"_id":1,"_args":{"Result":true,"Data":[],"Error":["操作失败"]}}`, ErrPINRefused, ErrDevice},
		{"fail no message", `{"_id":1,"_args":{"Result":false}}`, ErrPINRefused, ErrDevice},
		{"fail error as one string", `{"_id":1,"_args":{"Result":false,"Error":"卡片返回未知状态"}}`, ErrPINRefused, ErrDevice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r eportReply
			if err := json.Unmarshal([]byte(tc.reply), &r); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				withPIN bool
				want    error
			}{{true, tc.withPIN}, {false, tc.noPIN}} {
				_, err := r.result(MethodSign, c.withPIN, DefaultPINErrorMarkers)
				if c.want == nil {
					if err != nil {
						t.Errorf("withPIN=%v: %v, want success", c.withPIN, err)
					}
					continue
				}
				if !errors.Is(err, c.want) {
					t.Errorf("withPIN=%v: %v, want %v", c.withPIN, err, c.want)
				}
				if c.want != ErrPINRefused && errors.Is(err, ErrPINRefused) {
					t.Errorf("withPIN=%v: %v is a refused PIN", c.withPIN, err)
				}
			}
		})
	}
	t.Run("fail malformed reply", func(t *testing.T) {
		_, err := eportReply{malformed: true}.result(MethodSign, true, DefaultPINErrorMarkers)
		if !errors.Is(err, ErrDevice) || errors.Is(err, ErrPINRefused) {
			t.Errorf("malformed: %v, want a device error", err)
		}
	})
}
