// Package testenv is what tests share: the real services they run against —
// RabbitMQ and NATS on this machine — found in one place, the one polling
// helper, and a logger into the test's log. A test that needs a service that is
// down is skipped with the command that starts it, except under CI=true,
// where the service must be there and the test fails instead.
//
// A skip shows only with go test -v, so each is also recorded, when
// COMPOSECI_TEST_SKIPS names a file, as a line of JSON appended to it: make
// test gives every run a file of its own and after the tests prints, from
// Summary, one line per service that was down naming the tests it skipped
// and how to start it.
package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
)

// AMQPURL returns the URL of the RabbitMQ broker for tests
// (COMPOSECI_TEST_AMQP_URL, default the local broker with guest/guest),
// after checking that it accepts a connection.
func AMQPURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("COMPOSECI_TEST_AMQP_URL")
	if u == "" {
		u = "amqp://guest:guest@127.0.0.1:5672/"
	}
	conn, err := amqp.DialConfig(u, amqp.Config{Dial: amqp.DefaultDial(3 * time.Second)})
	if err != nil {
		unavailable(t, Skip{Service: "RabbitMQ", URL: u, Start: "rabbitmq-server -detached"}, err)
		return u
	}
	conn.Close()
	return u
}

// WaitFor calls f until it returns nil, failing the test with f's last
// error after total (nats-server's checkFor): tests poll with a deadline
// instead of sleeping.
func WaitFor(t testing.TB, total time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after %s: %v", what, total, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Logger writes to the test's log (seen with -v or on failure), at debug
// level when COMPOSECI_TEST_LOG=debug, and nowhere once the test is over:
// servers' goroutines may still log.
func Logger(t testing.TB) *slog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(w.close)
	level := slog.LevelInfo
	if os.Getenv("COMPOSECI_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testLogWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testLogWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(b), "\n"))
	}
	return len(b), nil
}

func (w *testLogWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// NATSURL returns the URL of the NATS server with JetStream for tests
// (COMPOSECI_TEST_NATS_URL, default the local server), after checking that
// it answers.
func NATSURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("COMPOSECI_TEST_NATS_URL")
	if u == "" {
		u = "nats://127.0.0.1:4222"
	}
	nc, err := nats.Connect(u, nats.Timeout(2*time.Second))
	if err == nil {
		defer nc.Close()
		var js jetstream.JetStream
		if js, err = jetstream.New(nc); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_, err = js.AccountInfo(ctx)
		}
	}
	if err != nil {
		unavailable(t, Skip{Service: "NATS with JetStream", URL: u,
			Start: "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log"}, err)
	}
	return u
}

// NATSServerBinary returns the nats-server program the tests that run a
// NATS cluster of their own start (COMPOSECI_TEST_NATS_SERVER, default
// /usr/sbin/nats-server), after checking that it runs.
func NATSServerBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("COMPOSECI_TEST_NATS_SERVER")
	if bin == "" {
		bin = "/usr/sbin/nats-server"
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		unavailable(t, Skip{Service: "the nats-server program", URL: bin, Start: "apt-get install nats-server"}, fmt.Errorf("%w: %s", err, out))
	}
	return bin
}
