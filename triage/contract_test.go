package triage_test

import (
	"testing"

	"github.com/composeci/composeci/triage"
	"github.com/composeci/composeci/triage/triagetest"
)

func TestFileBackends(t *testing.T) {
	t.Run("registry", func(t *testing.T) { triagetest.Registry(t, triage.FileRegistry{Dir: t.TempDir()}) })
	t.Run("ledger", func(t *testing.T) { triagetest.Ledger(t, triage.FileLedger{Dir: t.TempDir()}) })
}
