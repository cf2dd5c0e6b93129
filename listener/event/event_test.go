package event

import (
	"errors"
	"testing"

	"github.com/composeci/composeci/fedfind"
)

func TestValidate(t *testing.T) {
	ok := Event{Kind: KindComposeStatus, ComposeID: "Fedora-Rawhide-20261122.n.0", Source: SourceAMQP}
	tests := []struct {
		name  string
		edit  func(*Event)
		valid bool
	}{
		{"a compose status from AMQP", func(*Event) {}, true},
		{"an openQA job from the poller", func(e *Event) { e.Kind, e.Source = KindOpenQAJobDone, SourcePoll }, true},
		{"unknown kind", func(e *Event) { e.Kind = "compose.exploded" }, false},
		{"unknown source", func(e *Event) { e.Source = "carrier-pigeon" }, false},
		{"not a compose ID", func(e *Event) { e.ComposeID = "../../etc/passwd" }, false},
		{"a compose ID in a non-canonical spelling", func(e *Event) { e.ComposeID = "Fedora-Rawhide-20261122.nightly.0" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok
			tt.edit(&e)
			err := e.Validate()
			if tt.valid != (err == nil) {
				t.Fatalf("Validate() = %v, want valid %v", err, tt.valid)
			}
			if err != nil && !errors.Is(err, fedfind.ErrInvalidInput) {
				t.Errorf("error %v does not wrap ErrInvalidInput", err)
			}
		})
	}
}
