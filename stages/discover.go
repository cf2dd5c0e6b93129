package stages

import (
	"context"
	"fmt"
	"slices"

	"github.com/composeci/composeci/fedfind"
)

// Discover places the compose in the tree and decides whether this
// deployment handles its stream.
type Discover struct {
	// Streams are the release streams handled; a compose of another stream
	// ends as soon as it is discovered. Empty means every stream.
	Streams []fedfind.StreamKind
}

// Run advances a compose of a watched stream and ends any other.
func (d Discover) Run(_ context.Context, cm *fedfind.Compose, _ State) (Outcome, error) {
	data := map[string]string{DataStream: string(cm.Stream.Kind), DataLocation: cm.Location}
	if len(d.Streams) > 0 && !slices.Contains(d.Streams, cm.Stream.Kind) {
		return Outcome{End: EndDone, Note: fmt.Sprintf("not handled: %s composes are not watched", cm.Stream.Kind), Data: data}, nil
	}
	return Outcome{Advance: true, Note: fmt.Sprintf("%s compose at %s", cm.Stream, cm.Location), Data: data}, nil
}
