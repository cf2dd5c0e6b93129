package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no user", "nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"password hidden", "amqp://guest:hunter2@127.0.0.1:5672/", "amqp://guest:xxxxx@127.0.0.1:5672/"},
		{"user alone kept", "amqps://fedora:@rabbitmq.fedoraproject.org/%2Fpublic_pubsub", "amqps://fedora:xxxxx@rabbitmq.fedoraproject.org/%2Fpublic_pubsub"},
		{"each of a list", "nats://a:s1@n1:4222, nats://b:s2@n2:4222", "nats://a:xxxxx@n1:4222,nats://b:xxxxx@n2:4222"},
		{"unparsable with a secret", "amqp://u:p%zz@host/", "…@host/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := URL(tt.in)
			if got != tt.want {
				t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			for _, secret := range []string{"hunter2", "s1", "s2", "p%zz"} {
				if strings.Contains(got, secret) {
					t.Errorf("URL(%q) = %q leaks %q", tt.in, got, secret)
				}
			}
		})
	}
}
