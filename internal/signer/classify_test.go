package signer

import (
	"errors"
	"testing"
)

// TestEPortReplyKinds reads control replies to a call that carried the PIN
// and to one that did not. Only words that name the PIN are a refusal, only
// a known reader or control error named by its code leaves the PIN
// unchecked; anything else that carried the PIN (other words, reader words
// without a code, a reply of the wrong shape) is a strike. A PIN-free call
// is never a refused PIN.
func TestEPortReplyKinds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reply   string
		withPIN PINResult
		kind    error // kind of the error (nil: success)
		noPIN   error // kind for a PIN-free call
	}{
		{"ok signed", `{"_id":1,"_status":"00","_args":{"Result":true,"Data":["c2ln","01"],"Error":[]}}`, PINAccepted, nil, nil},
		{"ok signed without status", `{"_id":1,"_args":{"Result":true,"Data":["c2ln"]}}`, PINAccepted, nil, nil},
		{"fail reader reset 50070", `{"_id":1,"_status":"00","_args":{"Result":false,"Error":["[读卡器底层库]复位读卡器失败:错误码=50070","Err:Custom50070"]}}`, PINDeviceCode, ErrDevice, ErrDevice},
		{"fail reader open 50200", `{"_id":1,"_args":{"Result":false,"Error":["Err:Custom50200"]}}`, PINDeviceCode, ErrDevice, ErrDevice},
		{"fail control unreachable 60408", `{"_id":1,"_args":{"Result":false,"Error":["Err:Base60408"]}}`, PINDeviceCode, ErrUnavailable, ErrDevice},
		{"fail crypto device wording without a code", `{"_id":1,"_args":{"Result":false,"Error":["打开密码设备失败"]}}`, PINUnknown, ErrDevice, ErrDevice},
		{"fail reader words without a code", `{"_id":1,"_args":{"Result":false,"Error":["[读卡器底层库]操作失败"]}}`, PINUnknown, ErrDevice, ErrDevice},
		{"fail one letter", `{"_id":1,"_args":{"Result":false,"Error":["E"]}}`, PINUnknown, ErrDevice, ErrDevice},
		{"fail code inside a longer number is unknown", `{"_id":1,"_args":{"Result":false,"Error":["Err:Custom500701"]}}`, PINUnknown, ErrDevice, ErrDevice},
		{"fail reader code next to a PIN word", `{"_id":1,"_args":{"Result":false,"Error":["50070 口令错误"]}}`, PINRefused, ErrPINRefused, ErrDevice},
		{"fail code only", `{"_id":1,"_args":{"Result":false,"Error":["Err:Custom30015"]}}`, PINUnknown, ErrDevice, ErrDevice},
		{"fail remaining tries", `{"_id":1,"_args":{"Result":false,"Error":["校验失败,剩余重试次数:7"]}}`, PINRefused, ErrPINRefused, ErrDevice},
		{"fail status word", `{"_id":1,"_args":{"Result":false,"Error":["SW=63C7"]}}`, PINRefused, ErrPINRefused, ErrDevice},
		{"fail status 01 with an error", `{"_id":1,"_status":"01","_args":{"Result":false,"Error":["口令错误"]}}`, PINRefused, ErrPINRefused, ErrDevice},
		{"fail status 01 with Result true", `{"_id":1,"_status":"01","_args":{"Result":true,"Data":["c2ln"],"Error":[]}}`, PINUnknown, ErrDevice, ErrDevice},
		{"fail Result true with an error", `{"_id":1,"_args":{"Result":true,"Data":[],"Error":["操作失败"]}}`, PINUnknown, ErrDevice, ErrDevice},
		{"fail no message", `{"_id":1,"_args":{"Result":false}}`, PINUnknown, ErrDevice, ErrDevice},
		{"fail Result as a string", `{"_id":1,"_args":{"Result":"false","Error":["口令错误"]}}`, PINUnknown, ErrDevice, ErrDevice},
		{"fail Error not a list", `{"_id":1,"_args":{"Result":false,"Error":"卡片返回未知状态"}}`, PINUnknown, ErrDevice, ErrDevice},
		{"fail Error with a number", `{"_id":1,"_args":{"Result":false,"Error":[30015]}}`, PINUnknown, ErrDevice, ErrDevice},
		{"fail Data not a list", `{"_id":1,"_args":{"Result":true,"Data":"c2ln"}}`, PINUnknown, ErrDevice, ErrDevice},
		{"fail status a number", `{"_id":1,"_status":0,"_args":{"Result":true,"Data":["c2ln"]}}`, PINUnknown, ErrDevice, ErrDevice},
		{"fail no _args", `{"_id":1,"_status":"00"}`, PINUnknown, ErrDevice, ErrDevice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := decodeReply([]byte(tc.reply))
			if err != nil {
				t.Fatal(err)
			}
			_, res, err := r.result(MethodSign, true, DefaultPINErrorMarkers)
			if res != tc.withPIN {
				t.Errorf("withPIN: result %v, want %v (%v)", res, tc.withPIN, err)
			}
			if (err == nil) != (tc.kind == nil) || (err != nil && !errors.Is(err, tc.kind)) {
				t.Errorf("withPIN: %v, want kind %v", err, tc.kind)
			}
			if tc.kind != ErrPINRefused && errors.Is(err, ErrPINRefused) {
				t.Errorf("withPIN: %v is a refused PIN", err)
			}
			_, _, err = r.result(MethodCertNo, false, DefaultPINErrorMarkers)
			if (err == nil) != (tc.noPIN == nil) || (err != nil && !errors.Is(err, tc.noPIN)) {
				t.Errorf("no PIN: %v, want kind %v", err, tc.noPIN)
			}
			if errors.Is(err, ErrPINRefused) {
				t.Errorf("no PIN: %v is a refused PIN", err)
			}
		})
	}
	t.Run("fail not JSON", func(t *testing.T) {
		if _, err := decodeReply([]byte(`"Result":"false"`)); err == nil {
			t.Error("decodeReply accepted a message that is not a JSON object")
		}
	})
}
