package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/testenv"
)

// TestCheckNotifies: check --notify tells mail, a webhook and Fedora
// Messaging (the real RabbitMQ) once per version of the report: checked
// again unchanged, nobody hears twice; a known issue registered changes the
// report's classification, and its next version goes out once more — the
// mail as an update in the first mail's thread.
func TestCheckNotifies(t *testing.T) {
	amqpURL := testenv.AMQPURL(t)
	w, mail := checkWorld(t)
	dir := t.TempDir()
	const secret = "hook-secret-0123456789"
	hook := fakefedora.NewWebhookReceiver(secret)
	t.Cleanup(hook.Close)
	os.WriteFile(filepath.Join(dir, "hook.secret"), []byte(secret+"\n"), 0o600)
	routing := filepath.Join(dir, "routing.toml")
	os.WriteFile(routing, []byte(`[streams.rawhide]
all = ["qa@example.org"]

[[webhook]]
url = "`+hook.URL()+`"
secret_file = "hook.secret"
`), 0o644)
	prefix := fmt.Sprintf("test.composeci%d", time.Now().UnixNano())
	sub, err := fakefedora.Subscribe(t.Context(), amqpURL, "amq.topic", prefix+".#")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })

	args := append([]string{"check", demoRawhide, "--notify", "--routing", routing, "--publish-amqp", amqpURL, "--publish-topic-prefix", prefix,
		"--public-url", "https://composeci.example.org/"}, w.flags()...)
	code, _, errOut := runCLI(t, nil, args...)
	if code != 1 || !strings.Contains(errOut, "Mailed to [qa@example.org]") || !strings.Contains(errOut, "Webhooks: 1 told now") || !strings.Contains(errOut, "Published to Fedora Messaging") {
		t.Fatalf("check --notify: exit %d\n%s", code, errOut)
	}
	if n := len(hook.Accepted()); n != 1 || !hook.Accepted()[0].SignatureOK {
		t.Fatalf("webhook deliveries %d", n)
	}
	var body struct {
		ComposeID string `json:"compose_id"`
		Version   string `json:"version"`
		Links     struct {
			Dashboard string `json:"dashboard"`
		} `json:"links"`
		NewFailures []struct {
			Test string `json:"test"`
		} `json:"new_failures"`
	}
	if err := json.Unmarshal(hook.Accepted()[0].Body, &body); err != nil || body.ComposeID != demoRawhide ||
		body.Links.Dashboard != "https://composeci.example.org/composes/"+demoRawhide || len(body.NewFailures) != 1 {
		t.Errorf("webhook body %v %+v", err, body)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	msg, err := sub.Next(ctx)
	if err != nil || msg.Topic != prefix+".composeci.compose.check.complete" || !strings.Contains(string(msg.Body), body.Version) {
		t.Fatalf("published message: %v %+v", err, msg)
	}

	// Again, unchanged: nobody hears twice.
	code, _, errOut = runCLI(t, nil, args...)
	if code != 1 || !strings.Contains(errOut, "Already mailed") || !strings.Contains(errOut, "0 told now, 1 told of this version before") ||
		!strings.Contains(errOut, "Already published") {
		t.Errorf("again: exit %d\n%s", code, errOut)
	}
	if n, _ := sub.Ready(); n != 0 || len(hook.Accepted()) != 1 || len(mail.Messages()) != 1 {
		t.Errorf("again: %d messages published, %d webhook deliveries, %d mails", n, len(hook.Accepted()), len(mail.Messages()))
	}

	// A known issue changes the classification: the next version.
	if code, out, errOut := runCLI(t, nil, append([]string{"known", "add", "--test", "desktop_terminal", "--reason", "font", "--by", "qa"}, w.flags()...)...); code != 0 {
		t.Fatalf("known add: %d %s%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, nil, args...)
	if !strings.Contains(errOut, "Mailed the updated report") || !strings.Contains(errOut, "Webhooks: 1 told now") || !strings.Contains(errOut, "Published to Fedora Messaging") {
		t.Errorf("the next version: exit %d\n%s", code, errOut)
	}
	msgs := mail.Messages()
	if len(msgs) != 2 || !strings.HasSuffix(msgs[1].Subject(), "[updated]") || msgs[1].Header("In-Reply-To") != "<"+msgs[0].Header("Message-ID")[1:len(msgs[0].Header("Message-ID"))-1]+">" {
		t.Errorf("the update mail: %d mails; subject %q, In-Reply-To %q, first %q", len(msgs), msgs[len(msgs)-1].Subject(), msgs[len(msgs)-1].Header("In-Reply-To"), msgs[0].Header("Message-ID"))
	}
	if _, err := sub.Next(ctx); err != nil {
		t.Errorf("the next version was not published: %v", err)
	}

	// Configuration errors come before any work.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"check", demoRawhide, "--publish-amqp", amqpURL}, "--publish-amqp needs --notify"},
		{[]string{"check", demoRawhide, "--notify", "--publish-amqp", "amqp://guest:hunter2@[::1"}, "--publish-amqp"},
	} {
		code, _, errOut := runCLI(t, nil, append(tc.args, w.flags()...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "hunter2") {
			t.Errorf("%v: exit %d: %s", tc.args, code, errOut)
		}
	}
}
