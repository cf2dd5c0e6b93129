package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeTB records what a helper asks of the test instead of ending it.
type fakeTB struct {
	testing.TB
	name           string
	skipped, fatal string
}

func (f *fakeTB) Helper()                         {}
func (f *fakeTB) Name() string                    { return f.name }
func (f *fakeTB) Skip(args ...any)                { f.skipped = fmt.Sprint(args...) }
func (f *fakeTB) Fatal(args ...any)               { f.fatal = fmt.Sprint(args...) }
func (f *fakeTB) Logf(format string, args ...any) {}

// TestServiceDown: with the services pointed at a closed port, a test that
// needs one is skipped with the command that starts it and recorded for
// make test's summary — or, under CI=true, fails.
func TestServiceDown(t *testing.T) {
	t.Setenv("COMPOSECI_TEST_AMQP_URL", "amqp://guest:sesame@127.0.0.1:1/")
	t.Setenv("COMPOSECI_TEST_NATS_URL", "nats://127.0.0.1:1")
	for _, tc := range []struct {
		name   string
		ci     string
		record bool
	}{
		{"outside CI, recorded", "", true},
		{"outside CI, no skips file", "", false},
		{"CI=false", "false", true},
		{"in CI", "true", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			skips := filepath.Join(t.TempDir(), "skips")
			if tc.record {
				t.Setenv(SkipsFileEnv, skips)
			} else {
				t.Setenv(SkipsFileEnv, "")
			}
			amqpTest := &fakeTB{TB: t, name: "TestNeedsRabbit"}
			AMQPURL(amqpTest)
			natsTest := &fakeTB{TB: t, name: "TestNeedsNATS/sub"}
			NATSURL(natsTest)
			for _, f := range []*fakeTB{amqpTest, natsTest} {
				if tc.ci == "true" {
					if f.fatal == "" || f.skipped != "" || !strings.Contains(f.fatal, "CI=true") {
						t.Errorf("%s in CI: fatal %q, skipped %q; want a failure", f.name, f.fatal, f.skipped)
					}
					continue
				}
				if f.skipped == "" || f.fatal != "" || !strings.Contains(f.skipped, "start it with `") {
					t.Errorf("%s: skipped %q, fatal %q; want a skip with the start command", f.name, f.skipped, f.fatal)
				}
			}
			if strings.Contains(amqpTest.skipped+amqpTest.fatal, "sesame") {
				t.Errorf("the password is shown: %s", amqpTest.skipped+amqpTest.fatal)
			}
			b, err := os.ReadFile(skips)
			if !tc.record || tc.ci == "true" {
				if err == nil {
					t.Errorf("recorded %s", b)
				}
				return
			}
			lines, err := Summary(strings.NewReader(string(b)))
			if err != nil || len(lines) != 2 {
				t.Fatalf("Summary of %s = %q, %v", b, lines, err)
			}
			for i, want := range [][]string{
				{"SKIPPED 1 test: NATS with JetStream is down (nats://127.0.0.1:1): internal/testenv TestNeedsNATS/sub. Start it with: start-stop-daemon "},
				{"SKIPPED 1 test: RabbitMQ is down (amqp://guest:xxxxx@127.0.0.1:1/): internal/testenv TestNeedsRabbit. Start it with: rabbitmq-server -detached"},
			} {
				for _, w := range want {
					if !strings.Contains(lines[i], w) {
						t.Errorf("summary line %q lacks %q", lines[i], w)
					}
				}
			}
		})
	}
}

func TestSummary(t *testing.T) {
	rabbit := `{"service":"RabbitMQ","url":"amqp://guest:xxxxx@127.0.0.1:5672/","start":"rabbitmq-server -detached","package":"%s","test":"%s"}` + "\n"
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"none", "", nil},
		{"tests of two packages, one twice", fmt.Sprintf(rabbit, "listener/fedmsg", "TestB") + fmt.Sprintf(rabbit, "cmd/composeci", "TestNotify") +
			fmt.Sprintf(rabbit, "listener/fedmsg", "TestA") + fmt.Sprintf(rabbit, "listener/fedmsg", "TestA") + "\n",
			[]string{"SKIPPED 3 tests: RabbitMQ is down (amqp://guest:xxxxx@127.0.0.1:5672/): cmd/composeci TestNotify; listener/fedmsg TestA, TestB. Start it with: rabbitmq-server -detached"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Summary(strings.NewReader(tc.in))
			if err != nil || strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("Summary = %q, %v\nwant %q", got, err, tc.want)
			}
		})
	}
	if _, err := Summary(strings.NewReader("not json\n")); err == nil {
		t.Error("Summary of a broken file: no error")
	}
}
