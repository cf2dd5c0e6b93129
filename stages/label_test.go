package stages_test

import (
	"context"
	"strings"
	"testing"

	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/reports"
)

// TestCheckNamesTheCandidate: the report of a candidate compose carries
// the label of its composeinfo.json, in the JSON, the heading and the mail
// subject; a compose without one (a nightly, an updates compose) has none.
func TestCheckNamesTheCandidate(t *testing.T) {
	w := newStageWorld(t)
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-44-20261010.0", Status: "FINISHED", Label: "RC-1.1"})
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-44-20261012.0", Status: "FINISHED", Label: "RC-1.2"})
	w.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: stToday, Status: "FINISHED"})
	ctx := context.Background()
	for _, tt := range []struct {
		id, previous, label string
	}{
		{"Fedora-44-20261012.0", "Fedora-44-20261010.0", "RC-1.2"},
		{stToday, stPrev, ""},
		{"Fedora-43-updates-20261123.0", "", ""},
	} {
		t.Run(tt.id, func(t *testing.T) {
			cm, err := w.st.Fedfind.Resolve(ctx, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			prev := cm // an updates compose is compared with itself here: the label is what counts
			if tt.previous != "" {
				if prev, err = w.st.Fedfind.Resolve(ctx, tt.previous); err != nil {
					t.Fatal(err)
				}
			}
			r, err := w.st.Check.Build(ctx, cm, prev)
			if err != nil {
				t.Fatal(err)
			}
			name := tt.id
			if tt.label != "" {
				name += " (" + tt.label + ")"
			}
			if r.Label != tt.label || !strings.HasPrefix(reports.Subject(r), name+" compose check: ") {
				t.Errorf("label %q, subject %q; want %q", r.Label, reports.Subject(r), tt.label)
			}
			var text strings.Builder
			if err := reports.RenderText(&text, r); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(text.String(), name+" compose check report\n"+strings.Repeat("-", len(name+" compose check report"))+"\n") {
				t.Errorf("the text report opens with %q", text.String()[:min(len(text.String()), 120)])
			}
		})
	}
}
