package reports

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"time"
)

// FileDeliveries is the file, beside a compose's report, that records the
// notifications delivered of it other than mail: webhooks and Fedora
// Messaging publications. Like the mail ledger it is never served over
// HTTP.
const FileDeliveries = "deliveries.json"

// The channels a Delivery goes over.
const (
	ChannelWebhook = "webhook"
	ChannelAMQP    = "amqp"
)

// Delivery is one notification of one version of a compose's report,
// delivered over one channel to one endpoint.
type Delivery struct {
	// ID is DeliveryID(Channel, endpoint, compose, Version): what the
	// ledger is keyed by, and what the receiver sees (the
	// X-Composeci-Delivery header, the AMQP message_id).
	ID      string `json:"id"`
	Channel string `json:"channel"`
	// Endpoint names the endpoint for people: a webhook's URL without
	// credentials or query, a broker's host, exchange and topic. It holds
	// no secret.
	Endpoint string `json:"endpoint"`
	// Version is the report's ContentKey.
	Version     string    `json:"version"`
	DeliveredAt time.Time `json:"delivered_at"`
	// Attempts is how many tries it took (1 without a retry).
	Attempts int `json:"attempts,omitempty"`
	// Status is the HTTP status of a webhook's accepting answer.
	Status int `json:"status,omitempty"`
}

// Deliveries is the ledger of notifications delivered, so that each
// version of a report reaches each endpoint once, across retries and
// restarts. Archive implements it with a file beside the report; a shared
// store (a JetStream KV bucket) can implement it for many hosts.
type Deliveries interface {
	// Delivered returns the delivery with this ID of a compose's report,
	// and whether there is one.
	Delivered(ctx context.Context, composeID, id string) (Delivery, bool, error)
	// RecordDelivery notes a delivery, replacing one with the same ID.
	RecordDelivery(ctx context.Context, composeID string, d Delivery) error
}

// DeliveryID returns the deterministic id of the delivery of a version of
// a compose's report over a channel to an endpoint: a version 4 UUID whose
// bits come from a SHA-256 of the four (endpoint being the full address,
// which the hash does not reveal). The same delivery tried again — after a
// timeout, or after a crash between the receiver's acceptance and the
// ledger — carries the same id, so the receiver can drop the duplicate.
//
// It is shaped as version 4 (random) rather than version 5 (name-based)
// because Fedora Messaging requires message ids to be version 4 UUIDs: a
// hash is as unpredictable as a random draw to anyone who lacks its input.
func DeliveryID(channel, endpoint, composeID, version string) string {
	sum := sha256.Sum256([]byte("composeci delivery\x00" + channel + "\x00" + endpoint + "\x00" + composeID + "\x00" + version))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// deliveryLedger is the content of FileDeliveries.
type deliveryLedger struct {
	ComposeID  string     `json:"compose_id"`
	Deliveries []Delivery `json:"deliveries"`
}

// Delivered returns the delivery with this ID recorded beside a compose's
// report, and whether there is one. No ledger yet means no deliveries.
func (a Archive) Delivered(ctx context.Context, composeID, id string) (Delivery, bool, error) {
	l, err := a.readDeliveries(ctx, composeID)
	if err != nil {
		return Delivery{}, false, err
	}
	for _, d := range l.Deliveries {
		if d.ID == id {
			return d, true, nil
		}
	}
	return Delivery{}, false, nil
}

// RecordDelivery notes a delivery beside a compose's report, replacing one
// with the same ID. The ledger is rewritten atomically under its own lock,
// so two processes recording at once both land.
func (a Archive) RecordDelivery(ctx context.Context, composeID string, d Delivery) error {
	if d.ID == "" {
		return errors.New("archive: a delivery without an id")
	}
	return a.rewriteLedger(ctx, composeID, FileDeliveries, func() (any, error) {
		l, err := a.readDeliveries(ctx, composeID)
		if err != nil {
			return nil, err
		}
		l.ComposeID = composeID
		l.Deliveries = slices.DeleteFunc(l.Deliveries, func(x Delivery) bool { return x.ID == d.ID })
		l.Deliveries = append(l.Deliveries, d)
		return l, nil
	})
}

// DeliveriesOf returns every delivery recorded of a compose's report,
// oldest record first.
func (a Archive) DeliveriesOf(ctx context.Context, composeID string) ([]Delivery, error) {
	l, err := a.readDeliveries(ctx, composeID)
	if err != nil {
		return nil, err
	}
	return l.Deliveries, nil
}

func (a Archive) readDeliveries(ctx context.Context, composeID string) (deliveryLedger, error) {
	_, _, dir, err := a.location(composeID)
	if err != nil {
		return deliveryLedger{}, err
	}
	if err := ctx.Err(); err != nil {
		return deliveryLedger{}, err
	}
	empty := deliveryLedger{ComposeID: composeID, Deliveries: []Delivery{}}
	root, err := a.openRoot(false)
	if errors.Is(err, ErrNotFound) {
		return empty, nil
	}
	if err != nil {
		return deliveryLedger{}, err
	}
	defer root.Close()
	b, err := root.ReadFile(path.Join(dir, FileDeliveries))
	if errors.Is(err, fs.ErrNotExist) {
		return empty, nil
	}
	if err != nil {
		return deliveryLedger{}, fmt.Errorf("archive: %w", err)
	}
	var l deliveryLedger
	if err := json.Unmarshal(b, &l); err != nil {
		// Unlike a lost index, a lost ledger cannot be rebuilt: refuse
		// rather than deliver everything again.
		return deliveryLedger{}, fmt.Errorf("archive: %s/%s: %w", dir, FileDeliveries, err)
	}
	if l.Deliveries == nil {
		l.Deliveries = []Delivery{}
	}
	return l, nil
}
