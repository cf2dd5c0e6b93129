package reports_test

import (
	"testing"

	"github.com/composeci/composeci/reports"
	"github.com/composeci/composeci/reports/reportstest"
)

func TestArchiveIsAStore(t *testing.T) {
	reportstest.Store(t, reports.Archive{Dir: t.TempDir()})
}
