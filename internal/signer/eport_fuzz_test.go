package signer

import (
	"errors"
	"strings"
	"testing"
)

// FuzzEPortReply feeds the E-Port control's reply decoder what a control
// (or anything else on its port) might send: decodeReply, replyID and
// result never panic; a reply is a success only when the control said
// Result true with status 00 (or none) in the right shape; every failure
// is an *EPortError of one known kind; for a PIN-bearing call one naming a
// PIN marker is a refused PIN, one naming no known code a strike, and a
// reply of the wrong shape a strike, never a retryable device error.
func FuzzEPortReply(f *testing.F) {
	for _, s := range []string{
		`{"_id":7,"_method":"cus-sec_SpcSignDataAsPEM","_status":"00","_args":{"Result":true,"Data":["c2lnbmF0dXJl","03000000000cde6f"],"Error":[]}}`,
		`{"_id":"8","_method":"cus-sec_SpcSignDataAsPEM","_status":"00","_args":{"Result":false,"Data":[],"Error":["[读卡器底层库]复位读卡器失败:错误码=50070","Err:Custom50070"]}}`,
		`{"_id":9,"_status":"00","_args":{"Result":false,"Error":"Err:Base60408"}}`,
		`{"_id":10,"_status":"00","_args":{"Result":false,"Error":["口令错误，剩余次数2"]}}`,
		`{"_id":11,"_status":"01","_args":{"Result":true,"Data":["x"]}}`,
		`{"_id":0,"_method":"open","_args":{"Result":true,"Data":["hello"]}}`,
		`{"_id":12,"_args":{"Result":false,"Error":[null,1,{"a":"PIN"}]}}`,
		`{"_id":-1}`, `[]`, `null`, `{"_id":1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, err := decodeReply(msg)
		if err != nil {
			return
		}
		_, _ = replyID(r.ID)
		ok := r.malformed == "" && r.Result && (r.Status == "" || r.Status == "00") && len(nonEmpty(r.Error)) == 0
		for _, withPIN := range []bool{false, true} {
			_, res, err := r.result("cus-sec_SpcSignDataAsPEM", withPIN, DefaultPINErrorMarkers)
			if err == nil {
				if !ok || res != PINAccepted {
					t.Fatalf("success (%v) without a well-formed Result true, status 00 and no error: %s", res, msg)
				}
				continue
			}
			if ok || (withPIN && res == PINAccepted) {
				t.Fatalf("a well-formed Result true with status 00 and no error failed (%v): %v", res, err)
			}
			var ee *EPortError
			if !errors.As(err, &ee) || len(ee.Messages) == 0 {
				t.Fatalf("error %T %v is not an *EPortError with messages", err, err)
			}
			kinds := 0
			for _, k := range []error{ErrPINRefused, ErrDevice, ErrUnavailable} {
				if errors.Is(err, k) {
					kinds++
				}
			}
			if kinds != 1 {
				t.Fatalf("error %v is of %d kinds, want one", err, kinds)
			}
			if !withPIN {
				// No PIN was sent: never a refused PIN.
				if errors.Is(err, ErrPINRefused) {
					t.Fatalf("a PIN-free call read as a refused PIN: %v", err)
				}
				continue
			}
			if r.malformed != "" && res != PINUnknown {
				t.Fatalf("a malformed reply to a PIN-bearing call is %v, want a strike", res)
			}
			// A PIN-bearing call naming a PIN marker is refused, whatever
			// _status says; one that names neither a marker nor a known
			// code is a strike.
			all := strings.ToLower(strings.Join(ee.Messages, "\n"))
			named := false
			for _, m := range DefaultPINErrorMarkers {
				named = named || strings.Contains(all, strings.ToLower(m))
			}
			switch {
			case r.malformed == "" && named && (res != PINRefused || !errors.Is(err, ErrPINRefused)):
				t.Fatalf("messages %q name the PIN but the result is %v, %v", ee.Messages, res, err)
			case res == PINDeviceCode && !deviceCodes.MatchString(all):
				t.Fatalf("messages %q name no known code but leave the PIN unchecked", ee.Messages)
			case res != PINRefused && res != PINDeviceCode && res != PINUnknown:
				t.Fatalf("a failed PIN-bearing call is %v", res)
			}
		}
	})
}
