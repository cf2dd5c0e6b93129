package fedmsg

import (
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/composeci/composeci/fedfind"
)

// The Fedora Messaging topics (AMQP routing keys) composeci handles, with the
// production prefix. Routing keys are matched on their suffix after the
// prefix, so the staging prefix (org.fedoraproject.stg.) works too.
const (
	TopicComposeStatusChange = "org.fedoraproject.prod.pungi.compose.status.change"
	TopicOpenQAJobDone       = "org.fedoraproject.prod.openqa.job.done"
)

// Fedora's public broker : read-only, TLS with a public
// client certificate and SASL EXTERNAL.
const (
	FedoraPublicBrokerURL = "amqps://fedora:@rabbitmq.fedoraproject.org/%2Fpublic_pubsub"
	fedoraMessagingDir    = "/etc/fedora-messaging/"
)

// Config configures a Consumer. The CLI fills it from flags and TOML,
// starting from DefaultConfig. In NewConsumer an empty string, a zero
// number or a nil slice takes the default named on its field; the three
// queue flags are taken as given, so start from DefaultConfig to get
// fedora-messaging's defaults for them.
type Config struct {
	// URL of the broker, amqps://… or amqp://…; user, password and vhost
	// (URL-encoded, "%2F" for "/") are part of it. Required.
	URL string
	// CACert, Cert and Key are PEM files for TLS, used only with amqps://
	// URLs. CACert empty means the system's roots. With Cert (and Key) the
	// client authenticates with SASL EXTERNAL (the certificate's CN), as
	// Fedora's public broker requires.
	CACert, Cert, Key string
	// Exchange to bind the queue to; default "amq.topic". It is not
	// declared: it must exist.
	Exchange string
	// Queue name; default a fresh random UUID per Consumer (the public vhost
	// refuses names that are not UUIDs). The name is kept across
	// reconnects, so a durable queue is re-attached. Set a fixed UUID to
	// re-attach a durable queue after a restart of the process too.
	Queue string
	// Durable, AutoDelete and Exclusive are the queue's flags; the defaults
	// are fedora-messaging's (false, true, true), which lose every message
	// sent while disconnected. A durable, non-auto-delete, non-exclusive
	// queue keeps messages across a reconnect; on Fedora's public broker
	// such a queue is deleted after about one hour without a consumer, so
	// it bridges about 1 h of downtime (and holds at most about 50 MB).
	// Re-declaring an existing queue with other flags fails (406
	// PRECONDITION_FAILED inequivalent arg).
	Durable, AutoDelete, Exclusive bool
	// PassiveDeclare only checks that the queue exists (as fedora-messaging's
	// passive_declares); it needs a fixed Queue.
	PassiveDeclare bool
	// Bindings are the routing keys bound; default TopicComposeStatusChange
	// and TopicOpenQAJobDone. "*" and "#" wildcards work.
	Bindings []string
	// Prefetch is the channel's QoS prefetch count; default 25.
	Prefetch int
	// App, AppURL and AppContactsEmail are announced in the connection's
	// client_properties (app, app_url, app_contacts_email), as Fedora asks
	// of consumers; defaults "composeci" and the project's URL.
	App, AppURL, AppContactsEmail string
	// Streams are the release stream kinds (fedfind.StreamKind names:
	// rawhide, branched, eln, …, "other") whose composes become events;
	// default every Fedora stream, that is all but "other".
	Streams []string
	// Heartbeat interval; default the library's (10 s). A heartbeat in the
	// URL wins.
	Heartbeat time.Duration
	// DialTimeout bounds the TCP, TLS and AMQP handshakes; default 30 s.
	DialTimeout time.Duration
	// SubmitTimeout bounds one Sink.Submit; default 1 min.
	SubmitTimeout time.Duration
	// ReconnectDelay is the first wait after a connection or channel is
	// lost; it doubles per failed attempt up to ReconnectMaxDelay, with
	// jitter (each wait is uniform in [d/2, d]). Defaults 1 s and 1 min.
	ReconnectDelay, ReconnectMaxDelay time.Duration
	// NackDelay is the pause after a Submit failure; it doubles per
	// consecutive failure up to NackMaxDelay. Defaults 1 s and 30 s.
	NackDelay, NackMaxDelay time.Duration
	// StallTimeout, when positive, makes the consumer reconnect when it has
	// been connected for that long without a single delivery (a silent
	// stall, fedora-messaging #208). Zero (the default) leaves stall
	// detection to the caller (Idle, LastMessage).
	StallTimeout time.Duration
}

// DefaultConfig returns the configuration of a consumer of Fedora's
// public broker, with fedora-messaging's queue defaults and the certificate
// files where the fedora-messaging package installs them.
func DefaultConfig() Config {
	return Config{
		URL:               FedoraPublicBrokerURL,
		CACert:            fedoraMessagingDir + "cacert.pem",
		Cert:              fedoraMessagingDir + "fedora-cert.pem",
		Key:               fedoraMessagingDir + "fedora-key.pem",
		Exchange:          "amq.topic",
		Durable:           false,
		AutoDelete:        true,
		Exclusive:         true,
		Bindings:          []string{TopicComposeStatusChange, TopicOpenQAJobDone},
		Prefetch:          25,
		App:               "composeci",
		AppURL:            "https://github.com/composeci/composeci",
		DialTimeout:       30 * time.Second,
		SubmitTimeout:     time.Minute,
		ReconnectDelay:    time.Second,
		ReconnectMaxDelay: time.Minute,
		NackDelay:         time.Second,
		NackMaxDelay:      30 * time.Second,
	}
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// tlsConfig builds the TLS configuration: TLS 1.2 or newer, the CA file as
// roots, the client certificate when one is given. The server name is
// filled in from the URL by the library.
func tlsConfig(cfg Config) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CACert != "" {
		pem, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("%w: AMQP CA certificate: %w", fedfind.ErrInvalidInput, err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: AMQP CA certificate %s holds no PEM certificate", fedfind.ErrInvalidInput, cfg.CACert)
		}
	}
	switch {
	case cfg.Cert != "" && cfg.Key != "":
		cert, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: AMQP client certificate: %w", fedfind.ErrInvalidInput, err)
		}
		t.Certificates = []tls.Certificate{cert}
	case cfg.Cert != "" || cfg.Key != "":
		return nil, fmt.Errorf("%w: AMQP client certificate and key go together (cert %q, key %q)", fedfind.ErrInvalidInput, cfg.Cert, cfg.Key)
	}
	return t, nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = crand.Read(b[:]) // never fails (crypto/rand panics rather)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
