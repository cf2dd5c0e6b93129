package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/composeci/composeci/internal/fakefedora"
)

const demoLong = `Run composeci against a simulated Fedora on this machine — a compose tree
served over HTTP on 127.0.0.1 — and show, step by step and in plain words,
what each command finds. Nothing outside this process is contacted and no
service is needed.`

func newDemoCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run composeci against a simulated Fedora (no services needed)",
		Long:  demoLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d := &demo{a: a}
			return d.run(cmd)
		},
	}
}

type demo struct {
	a      *app
	root   string
	hubURL string
	mirror *fakefedora.Mirror
	hub    *fakefedora.KojiHub
	step   int
}

// say prints a step heading and its explanation.
func (d *demo) say(title, text string) {
	d.step++
	fmt.Fprintf(d.a.stdout, "\n== Step %d: %s\n", d.step, title)
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		fmt.Fprintf(d.a.stdout, "   %s\n", strings.TrimSpace(line))
	}
}

// sh runs a composeci command line in-process, as a user would type it, and
// reports its exit code.
func (d *demo) sh(cmd *cobra.Command, args ...string) int {
	fmt.Fprintf(d.a.stdout, "\n$ composeci %s\n", strings.Join(args, " "))
	full := append(args, "--compose-root", d.root)
	if d.hubURL != "" {
		switch args[0] {
		case "done":
			full = append(full, "--koji", d.hubURL)
		}
	}
	code := run(cmd.Context(), full, d.a.stdin, d.a.stdout, d.a.stdout, d.a.getenv)
	fmt.Fprintf(d.a.stdout, "[exit %d]\n", code)
	return code
}

// demoScenario is the simulated tree: a few Rawhide and Branched nightlies.
// The newest Rawhide lacks an expected image (Server boot on aarch64), has a
// new one (Budgie live) and a much larger KDE live image.
func demoScenario() *fakefedora.Mirror {
	m := fakefedora.NewMirror()
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261120.n.0", Status: "FINISHED"})
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261121.n.0", Status: "DOOMED"})
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261121.n.1", Status: "FINISHED"})
	newest := fakefedora.StandardImages("Fedora-Rawhide-20261122.n.0")
	kept := newest[:0]
	for _, im := range newest {
		switch {
		case im.Subvariant == "Server" && im.Type == "boot" && im.Arch == "aarch64":
			continue // the missing expected image
		case im.Subvariant == "KDE":
			im.Size = fakefedora.StableSize(im) * 115 / 100
		}
		kept = append(kept, im)
	}
	kept = append(kept, fakefedora.ImageSpec{Variant: "Budgie", Subvariant: "Budgie", Type: "live", Format: "iso", Arch: "x86_64"})
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261122.n.0", Status: "FINISHED_INCOMPLETE", Images: kept})
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-44-20261121.n.0", Status: "FINISHED"})
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-44-20261122.n.0", Status: "FINISHED"})
	return m
}

func (d *demo) run(cmd *cobra.Command) error {
	mirror := demoScenario()
	d.mirror = mirror
	d.root = mirror.Start()
	defer mirror.Close()
	d.hub = fakefedora.NewKojiHub(fakefedora.KojiHubOptions{})
	d.hubURL = d.hub.Start()
	defer d.hub.Close()
	fmt.Fprintf(d.a.stdout, "composeci demo — a simulated Fedora compose tree is served at %s\n", d.root)
	fmt.Fprintln(d.a.stdout, "(every command below also works against the real tree: drop --compose-root)")

	d.say("find the latest Rawhide nightly and list its images", `
		"rawhide" names the stream; composeci follows its latest-Fedora-Rawhide link,
		which Pungi moves only when a compose FINISHED, then reads images.json.`)
	d.sh(cmd, "images", "rawhide", "--arch", "x86_64")

	d.say("check the expected images", `
		Every Rawhide nightly must carry ten release-blocking images. One is missing
		here, so the command says which and exits 1 — scripts can test that.`)
	d.sh(cmd, "expected", "Fedora-Rawhide-20261122.n.0")

	d.say("find the previous successful compose", `
		Yesterday's first respin was DOOMED, so the previous good compose is its
		respin .n.1. One directory listing and one STATUS read find it; fedfind
		would probe up to 30 URLs one after another.`)
	d.sh(cmd, "previous", "Fedora-Rawhide-20261122.n.0", "--json")

	d.say("what changed since then", `
		The image diff against the previous compose: a new Budgie live image, the
		missing aarch64 Server boot image, and a KDE live image 15% larger.`)
	d.sh(cmd, "diff", "Fedora-Rawhide-20261122.n.0")

	d.doneStep(cmd)

	d.say("the same for Branched", `
		"branched" finds the current Branched release by its latest link; its two
		nightlies carry the same images, so the diff is empty and exits 0.`)
	d.sh(cmd, "diff", "branched")

	fmt.Fprintf(d.a.stdout, "\nDemo done: %d requests reached the simulated tree, %d the simulated Koji hub.\n", mirror.Requests(), d.hub.Requests())
	return nil
}

// doneStep shows today's nightly going from running to done: Pungi's STATUS
// turns FINISHED while Koji still builds images, and only when the last
// image task closes is the compose done.
func (d *demo) doneStep(cmd *cobra.Command) {
	const id = "Fedora-Rawhide-20261123.n.0"
	d.mirror.MustAddCompose(fakefedora.ComposeSpec{ID: id, Status: "STARTED"})
	start := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	d.hub.SetNow(start)
	// Nine image tasks, created a minute apart from 03:00; each waits a
	// minute for a builder and builds for 40 minutes.
	d.hub.AddNightlyImageTasks(id, "20261123.n.0", "Rawhide", 9, fakefedora.KojiRunSchedule(time.Minute, 40*time.Minute, fakefedora.KojiClosed)...)
	d.say("is today's nightly done?", `
		Pungi is still composing Fedora-Rawhide-20261123.n.0 and Koji is building its
		images. 'done' answers from STATUS plus the nightly's Koji image tasks, asked
		in one multicall per poll; --wait polls until the answer is final. Here a
		simulated half hour passes every second; STATUS turns FINISHED half an hour in,
		but only when the last image task closes is the compose done.`)
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for elapsed := time.Duration(0); ; {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			d.hub.Advance(3 * time.Minute)
			if elapsed += 3 * time.Minute; elapsed == 30*time.Minute {
				d.mirror.SetStatus(id, "FINISHED")
			}
		}
	}()
	d.sh(cmd, "done", id, "--wait", "--interval", "150ms", "--timeout", "30s")
	close(stop)
	<-finished
}
