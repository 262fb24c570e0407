package ceb179_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
)

func TestKindOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want ceb179.Kind
	}{
		{"ok bare kind", ceb179.ErrNotFound, ceb179.ErrNotFound},
		{"ok wrapped twice", fmt.Errorf("replay S1: %w", fmt.Errorf("get request S1: %w", ceb179.ErrRefused)), ceb179.ErrRefused},
		{"ok joined with another error", errors.Join(errors.New("timeout"), fmt.Errorf("claim: %w", ceb179.ErrClaimed)), ceb179.ErrClaimed},
		{"ok unavailable beside the cause", fmt.Errorf("send: %w: %w", ceb179.ErrUnavailable, errors.New("RequestThrottled")), ceb179.ErrUnavailable},
		{"fail no kind", errors.New("not found"), ""},
		{"fail nil", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ceb179.KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf(%v) = %q, want %q", tt.err, got, tt.want)
			}
			if tt.want != "" && !errors.Is(tt.err, tt.want) {
				t.Errorf("errors.Is(%v, %q) = false", tt.err, tt.want)
			}
			for _, other := range []ceb179.Kind{ceb179.ErrNotFound, ceb179.ErrConflict, ceb179.ErrClaimed, ceb179.ErrLeaseLost, ceb179.ErrRefused, ceb179.ErrUnavailable} {
				if other != tt.want && errors.Is(tt.err, other) {
					t.Errorf("errors.Is(%v, %q) = true", tt.err, other)
				}
			}
		})
	}
}

func TestDay(t *testing.T) {
	tests := []struct {
		name string
		at   time.Time
		want string
	}{
		{"ok UTC evening is the next China day", time.Date(2026, 11, 24, 16, 0, 0, 0, time.UTC), "2026-11-25"},
		{"ok UTC afternoon is the same China day", time.Date(2026, 11, 24, 15, 59, 59, 0, time.UTC), "2026-11-24"},
		{"ok China midnight", time.Date(2026, 11, 25, 0, 0, 0, 0, ceb179.China), "2026-11-25"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ceb179.Day(tt.at); got != tt.want {
				t.Errorf("Day(%v) = %s, want %s", tt.at, got, tt.want)
			}
		})
	}
}

func TestUploadAnswerFinal(t *testing.T) {
	for _, tt := range []struct {
		state ceb179.State
		want  bool
	}{
		{ceb179.StateAccepted, true}, {ceb179.StateRejected, true}, {ceb179.StateFailed, true},
		{ceb179.StateRetry, false}, {ceb179.StateNoData, false}, {ceb179.StateSigned, false}, {"SOMETHING_NEW", false},
	} {
		if got := (ceb179.UploadAnswer{State: tt.state}).Final(); got != tt.want {
			t.Errorf("UploadAnswer{State: %s}.Final() = %v, want %v", tt.state, got, tt.want)
		}
	}
}
