package ceb179

import (
	"testing"
	"time"
)

func TestStateFinal(t *testing.T) {
	tests := []struct {
		name  string
		state State
		want  bool
	}{
		{"ok received is not final", StateReceived, false},
		{"ok assembled is not final", StateAssembled, false},
		{"ok signed is not final", StateSigned, false},
		{"ok accepted is final", StateAccepted, true},
		{"ok rejected is final", StateRejected, true},
		{"ok failed is final", StateFailed, true},
		{"ok no data is final", StateNoData, true},
		{"ok invalid is final", StateInvalid, true},
		{"ok capped is final", StateCapped, true},
		{"fail unknown state is not final", State("BOGUS"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.state.Final(); got != tt.want {
				t.Errorf("%s.Final() = %v, want %v", tt.state, got, tt.want)
			}
		})
	}
}

func TestNewAssembleMessage(t *testing.T) {
	at := time.UnixMilli(1700000000123)
	m := NewAssembleMessage(Request{SessionID: "S1", OrderNo: "O1", ReceivedAt: at, Deadline: at.Add(Window)})
	want := AssembleMessage{SessionID: "S1", OrderNo: "O1", ReceivedAt: 1700000000123, Deadline: 1700000120123}
	if m != want {
		t.Fatalf("NewAssembleMessage = %+v, want %+v", m, want)
	}
}
