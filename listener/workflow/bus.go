package workflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/composeci/composeci/internal/backoff"
	"github.com/composeci/composeci/internal/redact"
)

// BusOptions says how to reach NATS JetStream: an external server (URL) or
// an embedded one that runs inside this process with its store under
// DataDir (the default: one binary, nothing to install).
type BusOptions struct {
	// URL of an external NATS server or cluster with JetStream enabled,
	// such as nats://127.0.0.1:4222 (several may be given, comma
	// separated). Empty runs an embedded server.
	URL string
	// CredsFile is a NATS credentials file for the external server.
	CredsFile string
	// DataDir holds the embedded server's JetStream store (in
	// <DataDir>/nats). Required for the embedded server.
	DataDir string
	// Listen is the address the embedded server accepts clients on, so
	// that `composeci worker` processes on other hosts can join it
	// ("127.0.0.1:4222"; port 0 picks a free port). Empty accepts
	// in-process connections only.
	Listen string
	// Name is the client connection's name as the server shows it.
	Name string
	// ConnectTimeout bounds each attempt to connect and each first
	// JetStream call (default 5 seconds).
	ConnectTimeout time.Duration
	Logger         *slog.Logger
}

// Bus is a connection to NATS JetStream, and the embedded server if there
// is one. The connection is made again when it was closed (current).
type Bus struct {
	srv      *server.Server // nil for an external server
	url      string
	log      *slog.Logger
	timeout  time.Duration
	natsOpts []nats.Option

	mu     sync.Mutex
	cur    *link
	closed bool
}

// link is one NATS connection.
type link struct {
	conn   *nats.Conn
	js     jetstream.JetStream
	closed chan struct{} // closed by the connection's ClosedHandler
}

func (l *link) isClosed() bool {
	select {
	case <-l.closed:
		return true
	default:
		return l.conn.IsClosed()
	}
}

// Connect starts the embedded NATS server (when o.URL is empty) or connects
// to an external one, and waits until JetStream answers: in a fresh cluster
// the first JetStream calls fail or hang until a meta leader is elected, so
// they are retried with a per-attempt timeout until ctx ends.
func Connect(ctx context.Context, o BusOptions) (*Bus, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := o.ConnectTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	name := o.Name
	if name == "" {
		name = "composeci"
	}
	b := &Bus{log: log, url: o.URL, timeout: timeout}
	b.natsOpts = []nats.Option{
		nats.Name(name),
		nats.Timeout(timeout),
		// Reconnect for ever, and soon: in a cluster (URL lists every
		// node, and the client learns the others from the server) to a
		// node that is up, a moment after its node went away.
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DrainTimeout(30 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("NATS error", "subject", subject, "err", err)
		}),
	}
	if o.CredsFile != "" {
		b.natsOpts = append(b.natsOpts, nats.UserCredentials(o.CredsFile))
	}
	if o.URL == "" {
		srv, err := startEmbedded(o, log, timeout)
		if err != nil {
			return nil, err
		}
		b.srv = srv
		if o.Listen == "" {
			b.natsOpts = append(b.natsOpts, nats.InProcessServer(srv))
		}
		b.url = srv.ClientURL()
	}
	if err := ctx.Err(); err != nil {
		b.shutdownServer(context.Background())
		return nil, err
	}
	if _, err := b.current(ctx); err != nil {
		b.shutdownServer(context.Background())
		return nil, err
	}
	if b.srv != nil {
		log.Info("embedded NATS started", "store", filepath.Join(o.DataDir, "nats"), "url", b.ClientURL())
	} else {
		log.Info("connected to NATS", "url", b.redactedURL())
	}
	return b, nil
}

// current returns the open connection, connecting again when the last one
// was closed.
func (b *Bus) current(ctx context.Context) (*link, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if b.cur != nil && !b.cur.isClosed() {
		return b.cur, nil
	}
	l := &link{closed: make(chan struct{})}
	opts := append(slices.Clone(b.natsOpts), nats.ClosedHandler(func(*nats.Conn) { close(l.closed) }))
	conn, err := nats.Connect(b.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", b.redactedURL(), err)
	}
	l.conn = conn
	l.js, err = jetstream.New(conn)
	if err == nil {
		err = retryJS(ctx, b.log, b.timeout, "JetStream account info", func(ctx context.Context) error {
			_, err := l.js.AccountInfo(ctx)
			return err
		})
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("NATS at %s: %w", b.redactedURL(), err)
	}
	b.cur = l
	return l, nil
}

// startEmbedded starts an in-process nats-server with JetStream. NoSigs
// keeps it from installing a SIGTERM handler that would exit the process
// behind our back; DontListen (unless o.Listen asks otherwise) keeps it off
// the network altogether.
func startEmbedded(o BusOptions, log *slog.Logger, timeout time.Duration) (*server.Server, error) {
	if o.DataDir == "" {
		return nil, errors.New("embedded NATS: no data directory given")
	}
	store := filepath.Join(o.DataDir, "nats")
	if err := os.MkdirAll(store, 0o750); err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	sopts := &server.Options{
		ServerName: "composeci",
		JetStream:  true,
		StoreDir:   store,
		NoSigs:     true,
		DontListen: o.Listen == "",
		// The HTTP monitor, cluster and leafnode ports stay off.
	}
	if o.Listen != "" {
		host, port, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS: listen address %q: %w", o.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("embedded NATS: listen address %q: bad port", o.Listen)
		}
		if p == 0 {
			p = server.RANDOM_PORT // Port 0 would mean the default, 4222.
		}
		sopts.Host, sopts.Port = host, p
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	srv.SetLoggerV2(serverLogger{log.With("component", "nats-server")}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(timeout + 10*time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS: not ready for connections after %s", timeout+10*time.Second)
	}
	return srv, nil
}

// JetStream returns the JetStream client of the current connection, for
// tools and tests that need more than the engine offers.
func (b *Bus) JetStream(ctx context.Context) (jetstream.JetStream, error) {
	l, err := b.current(ctx)
	if err != nil {
		return nil, err
	}
	return l.js, nil
}

// Conn returns the current NATS connection (nil once closed), for tests that
// cut it to see the engine recover.
func (b *Bus) Conn() *nats.Conn {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil {
		return nil
	}
	return b.cur.conn
}

// ClientURL is the URL other processes reach the bus at: the external URL,
// or the embedded server's listening address ("" when it listens in-process
// only).
func (b *Bus) ClientURL() string {
	if b.srv != nil {
		if b.srv.Addr() == nil {
			return ""
		}
		return b.srv.ClientURL()
	}
	return b.url
}

// Embedded reports whether the bus runs its own server in this process.
func (b *Bus) Embedded() bool { return b.srv != nil }

func (b *Bus) redactedURL() string {
	if b.srv != nil {
		return "embedded server"
	}
	return redact.URL(b.url)
}

// Close drains the connection (subscriptions finish what they hold,
// publishes are flushed), then stops the embedded server. When ctx ends
// first, the connection is closed at once.
func (b *Bus) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	l := b.cur
	b.mu.Unlock()
	var errs []error
	if l != nil && !l.conn.IsClosed() {
		if err := l.conn.Drain(); err != nil {
			l.conn.Close()
		}
		select {
		case <-l.closed:
		case <-ctx.Done():
			l.conn.Close()
			errs = append(errs, fmt.Errorf("draining the NATS connection: %w", ctx.Err()))
		}
	}
	if err := b.shutdownServer(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (b *Bus) shutdownServer(ctx context.Context) error {
	if b.srv == nil {
		return nil
	}
	done := make(chan struct{})
	go func() {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping the embedded NATS server: %w", ctx.Err())
	}
}

// retryJS calls f until it succeeds, with a per-attempt timeout, while the
// error may pass (no responders, timeouts, JetStream temporarily
// unavailable, as in a cluster that has not elected a leader yet) and ctx
// lasts. A JetStream API error below 500 (a bad request, a name in use) is
// returned at once.
func retryJS(ctx context.Context, log *slog.Logger, attemptTimeout time.Duration, what string, f func(context.Context) error) error {
	wait := backoff.Policy{Base: 100 * time.Millisecond, Max: 2 * time.Second}
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := f(actx)
		cancel()
		if err == nil {
			return nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.Code < 500 && apiErr.Code != 0 && !(CreateRace(err) && attempt <= maxCreateRaces) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jsReplicasNotSupported {
			return fmt.Errorf("%s: %w (this NATS server is not part of a cluster: give it one replica)", what, err)
		}
		if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrAuthorization) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jsInsufficientResources && attempt%10 == 1 {
			// A stream of N replicas needs N servers with JetStream up:
			// say so while waiting for them.
			log.Warn("JetStream lacks the servers or storage for this call (are as many cluster nodes up as replicas asked?); retrying",
				"call", what, "attempt", attempt, "err", err)
		} else if attempt%10 == 0 {
			log.Warn("JetStream still not answering, retrying", "call", what, "attempt", attempt, "err", err)
		} else {
			log.Debug("JetStream not ready, retrying", "call", what, "attempt", attempt, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %w)", what, ctx.Err(), err)
		case <-time.After(wait.Delay(attempt - 1)):
		}
	}
}

// JetStream API error codes retryJS tells apart.
const (
	jsInsufficientResources jetstream.ErrorCode = 10023
	jsStreamNameExists      jetstream.ErrorCode = 10058
	jsSubjectsOverlap       jetstream.ErrorCode = 10065
	jsReplicasNotSupported  jetstream.ErrorCode = 10074
)

// maxCreateRaces bounds the attempts a CreateRace error is retried: one that
// persists is a real clash (another stream has these subjects).
const maxCreateRaces = 5

// CreateRace reports whether err is JetStream refusing to create a stream
// (or a bucket) that another process created a moment earlier — processes
// of a deployment starting together race to make them. Another attempt
// finds the stream and updates it instead.
func CreateRace(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jsStreamNameExists || apiErr.ErrorCode == jsSubjectsOverlap)
}

// serverLogger hands the embedded server's log to slog. Its notices (a
// score of lines at start-up) are debug messages here; its Fatalf does not
// exit.
type serverLogger struct{ log *slog.Logger }

func (l serverLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l serverLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }

// RetryStalled calls f with attempt timeouts of 1, 2, 4 ... seconds until it
// succeeds, fails other than by its attempt's timeout, or ctx ends. It is
// for reads through an ephemeral ordered consumer — an object's chunks, a
// key-value watch or key listing — which in a cluster with a node down
// can wait in vain: the server may place the consumer on the node that is
// gone (nats-server 2.9 does, about one time in three with one node of
// three down). Another attempt gets another consumer.
func RetryStalled(ctx context.Context, f func(context.Context) error) error {
	return RetryStalledFrom(ctx, time.Second, f)
}

// RetryStalledFrom is RetryStalled with a first attempt of first, for
// calls that take longer when all is well — an idempotent write, such as
// an object put again under its name, whose acknowledgement a cluster
// lost in an election.
func RetryStalledFrom(ctx context.Context, first time.Duration, f func(context.Context) error) error {
	for attempt := first; ; attempt *= 2 {
		actx, cancel := context.WithTimeout(ctx, attempt)
		err := f(actx)
		stalled := err != nil && actx.Err() != nil && ctx.Err() == nil
		cancel()
		if !stalled {
			return err
		}
	}
}
