// Package event is what happens to a compose, from any source: Pungi's
// status messages on Fedora Messaging, the compose-tree poller, people and
// scripts. Events are the input of the workflow engine (listener/workflow);
// the sources (listener/fedmsg, listener/poller, the web API) only make
// them, so none of them needs to know the others or the engine.
package event

import (
	"context"
	"fmt"
	"time"

	"github.com/composeci/composeci/fedfind"
)

// Event sources.
const (
	SourceAMQP = "amqp" // a Fedora Messaging message
	SourcePoll = "poll" // the compose-tree poller found it
	SourceCLI  = "cli"  // a person or script asked
)

// Event kinds.
const (
	// KindComposeStatus: Pungi reported a compose STATUS (or a poller found
	// a compose). It starts the compose's workflow if there is none.
	KindComposeStatus = "compose.status"
	// KindOpenQAJobDone: openQA finished a job of a build; it only hurries
	// the wait for results (the jobs API is the truth).
	KindOpenQAJobDone = "openqa.job.done"
)

// Event is something that happened to a compose, from any source.
type Event struct {
	Kind      string `json:"kind"`
	ComposeID string `json:"compose_id"`
	// Status is the Pungi STATUS the message carried, if any.
	Status string `json:"status,omitempty"`
	// Location is the compose URL the message carried, if any.
	Location string `json:"location,omitempty"`
	Source   string `json:"source"`
	// MessageID is the source's id of the message (the AMQP message_id),
	// used to drop redelivered duplicates.
	MessageID string    `json:"message_id,omitempty"`
	Topic     string    `json:"topic,omitempty"`
	At        time.Time `json:"at"`
}

// Validate checks an event before it is stored: a known kind and source, and
// a canonical compose ID (it will name keys, subjects and files).
func (e Event) Validate() error {
	switch e.Kind {
	case KindComposeStatus, KindOpenQAJobDone:
	default:
		return fmt.Errorf("%w: unknown event kind %q", fedfind.ErrInvalidInput, e.Kind)
	}
	switch e.Source {
	case SourceAMQP, SourcePoll, SourceCLI:
	default:
		return fmt.Errorf("%w: unknown event source %q", fedfind.ErrInvalidInput, e.Source)
	}
	return CheckComposeID(e.ComposeID)
}

// CheckComposeID accepts only canonical compose IDs: they name KV keys,
// subjects and files, and one compose must have one name.
func CheckComposeID(id string) error {
	cid, err := fedfind.ParseComposeID(id)
	if err != nil {
		return err
	}
	if cid.String() != id {
		return fmt.Errorf("%w: compose ID %q is not canonical (%s)", fedfind.ErrInvalidInput, id, cid)
	}
	return nil
}

// Sink takes events. The workflow engine is one: Submit returns only once
// the event is stored, so an AMQP consumer may ack the message after it. A
// Submit error wrapping fedfind.ErrInvalidInput means the event itself was
// refused: submitting it again cannot help.
type Sink interface {
	Submit(ctx context.Context, e Event) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, e Event) error

// Submit calls f.
func (f SinkFunc) Submit(ctx context.Context, e Event) error { return f(ctx, e) }
