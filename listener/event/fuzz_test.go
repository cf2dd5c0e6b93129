package event_test

import (
	"encoding/json"
	"testing"

	"github.com/composeci/composeci/listener/event"
)

// FuzzEventJSON reads arbitrary events as the workflow engine reads them
// from its event stream (JSON, then Validate): an event it accepts names a
// canonical compose ID, and written back as JSON reads and validates the
// same.
func FuzzEventJSON(f *testing.F) {
	for _, s := range []string{
		`{"kind": "compose.status", "compose_id": "Fedora-Rawhide-20261122.n.0", "status": "FINISHED", "location": "https://kojipkgs.fedoraproject.org/compose/rawhide/Fedora-Rawhide-20261122.n.0/compose", "source": "amqp", "message_id": "5b8d4a9e-1f2c-4b6a-9d3e-7c1a2b3c4d5e", "topic": "org.fedoraproject.prod.pungi.compose.status.change", "at": "2026-11-22T07:59:58Z"}`,
		`{"kind": "openqa.job.done", "compose_id": "Fedora-44-20261122.n.0", "source": "amqp", "at": "2026-11-22T07:00:00.5+01:00"}`,
		`{"kind": "compose.status", "compose_id": "Fedora-44-20261010.1", "source": "cli", "at": "0001-01-01T00:00:00Z"}`,
		`{"kind": "compose.status", "compose_id": "Fedora-Rawhide-20261122.nightly.0", "source": "poll"}`,
		`{"kind": "compose.status", "compose_id": "../../etc", "source": "poll"}`,
		`{"kind": "compose.restart", "compose_id": "Fedora-44-20261010.1", "source": "cli"}`,
		`null`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var e event.Event
		if err := json.Unmarshal(b, &e); err != nil || e.Validate() != nil {
			return
		}
		if err := event.CheckComposeID(e.ComposeID); err != nil {
			t.Fatalf("valid event with compose ID %q: %v", e.ComposeID, err)
		}
		out, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("accepted event %+v does not encode: %v", e, err)
		}
		var again event.Event
		if err := json.Unmarshal(out, &again); err != nil || again.Validate() != nil {
			t.Fatalf("%+v written as %s reads as %+v, %v", e, out, again, err)
		}
		if !again.At.Equal(e.At) {
			t.Fatalf("time %v reads back as %v", e.At, again.At)
		}
		again.At = e.At
		if again != e {
			t.Fatalf("%+v reads back as %+v", e, again)
		}
	})
}
