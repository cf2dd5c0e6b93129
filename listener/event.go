// Package listener drives composes through composeci's pipeline without
// anyone watching a clock: event sources (Fedora Messaging over AMQP, pollers
// of the compose tree, the CLI) feed a durable per-compose workflow on NATS
// JetStream, whose stages (discover, await-complete, schedule, await-results,
// check, report) run as tasks that any worker may pick up. A crash, a restart
// or a duplicate message never loses a compose, schedules a job twice or
// sends a report twice. See ../shared/DESIGN.md, "The pipeline of one
// compose".
package listener

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
	// the await-results poll (the jobs API is the truth).
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
// a compose ID that parses (it will name keys, subjects and files).
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
	id, err := fedfind.ParseComposeID(e.ComposeID)
	if err != nil {
		return err
	}
	if id.String() != e.ComposeID {
		return fmt.Errorf("%w: compose ID %q is not canonical (%s)", fedfind.ErrInvalidInput, e.ComposeID, id)
	}
	return nil
}

// Sink takes events. The durable pipeline is one: Submit returns only once
// the event is stored, so an AMQP consumer may ack the message after it.
type Sink interface {
	Submit(ctx context.Context, e Event) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, e Event) error

// Submit calls f.
func (f SinkFunc) Submit(ctx context.Context, e Event) error { return f(ctx, e) }
