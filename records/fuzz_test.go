package records

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParsePayment checks that the import line parser never panics, that
// it refuses with ErrMalformed, and that a payment it accepts, written
// again as a line, reads back the same and keeps its digest.
func FuzzParsePayment(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{`{}`, `{"guid":"X"}`, `{"totalAmount":"5.0"}`, `{"totalAmount":5.0,"payExchangeInfoLists":[]}`,
		`{"ebpCode":"A","ebpCode":"B"}`, "\uFEFF{}", `[]`, `{"payExchangeInfoLists":[{"goodsInfo":[{}]}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePayment(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		line, err := p.MarshalJSON()
		if err != nil {
			// A payment that cannot be written (no totalAmount) has no line.
			return
		}
		back, err := ParsePayment(line)
		if err != nil {
			t.Fatalf("written line does not parse: %v\n%s", err, line)
		}
		// A missing goodsInfo reads as none and is written as []: compare
		// the written lines, which must be stable.
		again, err := back.MarshalJSON()
		if err != nil || !bytes.Equal(again, line) {
			t.Fatalf("round trip changed the line:\n%s\n%s %v", line, again, err)
		}
		d1, err1 := p.Digest()
		d2, err2 := back.Digest()
		if (err1 == nil) != (err2 == nil) || d1 != d2 {
			t.Fatalf("digest changed: %s %v / %s %v", d1, err1, d2, err2)
		}
	})
}
