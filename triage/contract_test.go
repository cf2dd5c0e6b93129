package triage_test

import (
	"errors"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/triage"
	"github.com/composeci/composeci/triage/triagetest"
)

func TestFileBackends(t *testing.T) {
	t.Run("registry", func(t *testing.T) { triagetest.Registry(t, triage.FileRegistry{Dir: t.TempDir()}) })
	t.Run("ledger", func(t *testing.T) { triagetest.Ledger(t, triage.FileLedger{Dir: t.TempDir()}) })
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "", want: time.Time{}},
		{in: "720h", want: now.Add(720 * time.Hour)},
		{in: "30d", want: now.Add(30 * 24 * time.Hour)},
		{in: " 2026-12-31 ", want: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2026-12-31T10:00:00+02:00", want: time.Date(2026, 12, 31, 8, 0, 0, 0, time.UTC)},
		{in: "-1h", bad: true},
		{in: "0d", bad: true},
		{in: "99999d", bad: true},
		{in: "next week", bad: true},
		{in: "2026-13-01", bad: true},
	} {
		got, err := triage.ParseExpiry(tt.in, now)
		if tt.bad {
			if !errors.Is(err, fedfind.ErrInvalidInput) {
				t.Errorf("ParseExpiry(%q) = %v, %v; want an invalid-input error", tt.in, got, err)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseExpiry(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
