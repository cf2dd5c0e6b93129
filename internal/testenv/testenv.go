// Package testenv finds the real services tests run against — RabbitMQ and
// NATS on this machine — in one place. A test that needs a service that is
// down is skipped with the command that starts it, except under CI=true,
// where the service must be there and the test fails instead.
package testenv

import (
	"os"
	"testing"
	"time"

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
		Unavailable(t, "RabbitMQ is not reachable at "+u+" ("+err.Error()+"); start it with `rabbitmq-server -detached`")
	}
	conn.Close()
	return u
}

// Unavailable skips the test for a missing service, or fails it in CI.
func Unavailable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
