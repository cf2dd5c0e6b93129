// Package checkstest builds checks inputs for tests, benchmarks and demos: a
// small hand-made compose pair that exercises every finding, and synthetic
// composes of any size.
package checkstest

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/openqa"
)

// OpenQABase is the openQA URL the jobs built here point at.
const OpenQABase = "https://openqa.fedoraproject.org"

// ExampleCompose and ExamplePrevious are the IDs of Example's composes.
const (
	ExampleCompose  = "Fedora-Rawhide-20261122.n.0"
	ExamplePrevious = "Fedora-Rawhide-20261121.n.0"
)

// Image builds a Rawhide image the way fedfind reads one from images.json.
func Image(compose, variant, subvariant, typ, format, arch string, size int64) fedfind.Image {
	id := fedfind.MustParseComposeID(compose)
	name := fmt.Sprintf("Fedora-%s-%s-%s-Rawhide-%s.%s", subvariant, typ, arch, id.ImageRelease(), format)
	dir := "iso"
	if format != "iso" {
		dir = "images"
	}
	path := fmt.Sprintf("%s/%s/%s/%s", variant, arch, dir, name)
	return fedfind.Image{
		Variant: variant, Arch: arch, Type: typ, Format: format, Subvariant: subvariant,
		Path: path, URL: "https://kojipkgs.fedoraproject.org/compose/rawhide/" + compose + "/compose/" + path,
		Size: size, Checksums: map[string]string{"sha256": fmt.Sprintf("%064x", size)},
		Identity: fedfind.Identity(subvariant, typ, format), Bootable: format == "iso",
	}
}

// Job builds a done openQA job of the given scenario and result.
func Job(id int64, test, flavor, arch, machine, result string) openqa.Job {
	return openqa.Job{
		ID: id, Name: fmt.Sprintf("fedora-Rawhide-%s-%s-BuildX-%s@%s", flavor, arch, test, machine),
		Test: test, State: openqa.StateDone, Result: result, GroupID: 1,
		Settings: map[string]string{"TEST": test, "FLAVOR": flavor, "ARCH": arch, "MACHINE": machine,
			"DISTRI": "fedora", "VERSION": "Rawhide"},
		URL: OpenQABase + "/tests/" + strconv.FormatInt(id, 10),
	}
}

// timed sets a job's start and end, minutes after 10:00 on the compose day
// (YYYYMMDD).
func timed(j openqa.Job, day string, startMin, minutes int) openqa.Job {
	at := func(m int) string {
		return fmt.Sprintf("%s-%s-%sT%02d:%02d:00", day[:4], day[4:6], day[6:], 10+m/60, m%60)
	}
	j.TStarted, j.TFinished = at(startMin), at(startMin+minutes)
	return j
}

// Example returns a Rawhide compose and its predecessor that between them
// produce every kind of finding: two missing expected images, an image
// added, two removed and one changed; new failures (one after a soft
// failure, one after a pass), a known failure, two fixes (one to a soft
// failure), a restarted job that passed on its second try, an incomplete, a
// parallel_failed partner, an obsoleted job. Every job is final. The
// reports' golden files are built from it.
func Example() checks.Input {
	const c, p = ExampleCompose, ExamplePrevious
	const GB = int64(1) << 30
	images := func(compose string, dvdSize int64) []fedfind.Image {
		return []fedfind.Image{
			Image(compose, "Server", "Server", "dvd", "iso", "x86_64", dvdSize),
			Image(compose, "Server", "Server", "boot", "iso", "x86_64", GB),
			Image(compose, "Workstation", "Workstation", "live", "iso", "x86_64", 2*GB),
			Image(compose, "Cloud", "Cloud_Base", "qcow2", "qcow2", "x86_64", GB/2),
			Image(compose, "Cloud", "Cloud_Base", "raw-xz", "raw.xz", "x86_64", GB/2),
			Image(compose, "Cloud", "Cloud_Base", "raw-xz", "raw.xz", "aarch64", GB/2),
			Image(compose, "Server", "Server", "dvd", "iso", "aarch64", 2*GB),
			Image(compose, "Server", "Server", "boot", "iso", "aarch64", GB),
		}
	}
	cur := append(images(c, 3*GB),
		Image(c, "Everything", "Everything", "boot", "iso", "x86_64", GB))
	prev := append(images(p, 2*GB),
		Image(p, "Spins", "KDE", "live", "iso", "x86_64", 3*GB),
		Image(p, "Workstation", "Workstation", "raw-xz", "raw.xz", "aarch64", 3*GB))

	const dvd, boot, live, cloud = "Server-dvd-iso", "Everything-boot-iso", "Workstation-live-iso", "Cloud_Base-qcow2-qcow2"
	day := "20261122"
	curJobs := []openqa.Job{
		timed(Job(1001, "install_default", dvd, "x86_64", "64bit", "failed"), day, 0, 40),
		timed(Job(1002, "install_default", dvd, "x86_64", "uefi", "passed"), day, 0, 35),
		timed(Job(1003, "server_cockpit_default", dvd, "x86_64", "64bit", "failed"), day, 45, 20),
		timed(Job(1004, "install_default", boot, "x86_64", "64bit", "softfailed"), day, 5, 30),
		timed(Job(1005, "desktop_terminal", live, "x86_64", "64bit", "failed"), day, 10, 15),
		timed(Job(1006, "desktop_browser", live, "x86_64", "64bit", "passed"), day, 10, 25),
		timed(Job(1007, "cloud_autocloud", cloud, "x86_64", "64bit", "softfailed"), day, 0, 20),
		timed(Job(1008, "install_default", dvd, "aarch64", "aarch64", "failed"), day, 0, 90),
		timed(Job(1009, "install_default", boot, "aarch64", "aarch64", "incomplete"), day, 0, 5),
		timed(Job(1010, "realmd_join_cockpit", dvd, "x86_64", "64bit", "passed"), day, 60, 30),
		timed(Job(1011, "server_freeipa_replication_master", dvd, "x86_64", "64bit", "failed"), day, 60, 45),
		timed(Job(1012, "server_freeipa_replication_replica", dvd, "x86_64", "64bit", "parallel_failed"), day, 60, 44),
		timed(Job(1013, "install_blivet_lvm", dvd, "x86_64", "64bit", "failed"), day, 0, 30),
		timed(Job(1020, "install_blivet_lvm", dvd, "x86_64", "64bit", "passed"), day, 35, 30),
		Job(1014, "base_update_cli", boot, "x86_64", "64bit", "obsoleted"),
	}
	curJobs[12].CloneID, curJobs[13].OriginID = 1020, 1013 // restarted, passed on the second try
	curJobs[14].State = openqa.StateCancelled

	pday := "20261121"
	prevJobs := []openqa.Job{
		timed(Job(901, "install_default", dvd, "x86_64", "64bit", "failed"), pday, 0, 40),
		timed(Job(902, "install_default", dvd, "x86_64", "uefi", "failed"), pday, 0, 35),
		timed(Job(903, "server_cockpit_default", dvd, "x86_64", "64bit", "passed"), pday, 45, 20),
		timed(Job(904, "install_default", boot, "x86_64", "64bit", "failed"), pday, 5, 30),
		timed(Job(905, "desktop_terminal", live, "x86_64", "64bit", "softfailed"), pday, 10, 15),
		timed(Job(906, "desktop_browser", live, "x86_64", "64bit", "passed"), pday, 10, 25),
		timed(Job(907, "cloud_autocloud", cloud, "x86_64", "64bit", "softfailed"), pday, 0, 20),
		timed(Job(909, "install_default", boot, "aarch64", "aarch64", "passed"), pday, 0, 60),
		timed(Job(910, "realmd_join_cockpit", dvd, "x86_64", "64bit", "passed"), pday, 60, 30),
		timed(Job(911, "server_freeipa_replication_master", dvd, "x86_64", "64bit", "passed"), pday, 60, 45),
		timed(Job(912, "server_freeipa_replication_replica", dvd, "x86_64", "64bit", "passed"), pday, 60, 44),
		timed(Job(913, "install_blivet_lvm", dvd, "x86_64", "64bit", "passed"), pday, 0, 30),
	}
	return checks.Input{
		Compose:  fedfind.MustParseComposeID(c),
		Images:   cur,
		Expected: fedfind.DefaultExpectedImages()[fedfind.StreamRawhide],
		Jobs:     curJobs,
		Previous: &checks.Previous{Compose: fedfind.MustParseComposeID(p), Images: prev, Jobs: prevJobs},
	}
}

// Synthetic returns a Rawhide compose of nImages images and nJobs openQA
// jobs, and a previous compose of the same shape, drawn from seed: about 5%
// of jobs fail, 3% soft-fail, 1% are incomplete, 2% were restarted after a
// failed first try; the previous compose's results are drawn independently,
// so failures split into new and known and some are fixed. The same
// arguments give the same input.
func Synthetic(nImages, nJobs int, seed uint64) checks.Input {
	const c, p = "Fedora-Rawhide-20261122.n.0", "Fedora-Rawhide-20261121.n.0"
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	arches := []string{"x86_64", "aarch64", "ppc64le", "s390x"}
	subvariants := []string{"Server", "Workstation", "KDE", "Cloud_Base", "Everything", "Xfce", "Silverblue",
		"Kinoite", "IoT", "Container_Base", "LXQt", "Sway", "Budgie", "Cinnamon", "MATE_Compiz"}
	kinds := []struct{ typ, format string }{{"dvd", "iso"}, {"boot", "iso"}, {"live", "iso"},
		{"qcow2", "qcow2"}, {"raw-xz", "raw.xz"}, {"vagrant-libvirt", "vagrant-libvirt.box"}}
	type flavorArch struct{ flavor, arch string }
	var cur, prev []fedfind.Image
	var flavors []flavorArch
	for i := range nImages {
		sv := subvariants[i%len(subvariants)]
		k := kinds[(i/len(subvariants))%len(kinds)]
		a := arches[(i/(len(subvariants)*len(kinds)))%len(arches)]
		size := int64(1<<30) + rng.Int64N(1<<30)
		im := Image(c, sv, sv, k.typ, k.format, a, size)
		cur = append(cur, im)
		flavors = append(flavors, flavorArch{im.Flavor(), a})
		if rng.IntN(50) != 0 { // 2% of images are new
			pim := Image(p, sv, sv, k.typ, k.format, a, size)
			if rng.IntN(20) == 0 {
				pim.Size = size / 2
			}
			prev = append(prev, pim)
		}
	}
	if len(flavors) == 0 {
		flavors = append(flavors, flavorArch{"universal", "x86_64"})
	}
	result := func() string {
		switch n := rng.IntN(100); {
		case n < 5:
			return openqa.ResultFailed
		case n < 8:
			return openqa.ResultSoftfailed
		case n < 9:
			return openqa.ResultIncomplete
		}
		return openqa.ResultPassed
	}
	var curJobs, prevJobs []openqa.Job
	for i := range nJobs {
		fl := flavors[i%len(flavors)]
		test := fmt.Sprintf("test_%03d", i/len(flavors))
		pj := Job(1_000_000+int64(i), test, fl.flavor, fl.arch, "64bit", result())
		prevJobs = append(prevJobs, timed(pj, "20261121", rng.IntN(600), 5+rng.IntN(90)))
		// Even ids for the jobs that count, odd ones for restarted first tries.
		cj := timed(Job(2_000_000+2*int64(i), test, fl.flavor, fl.arch, "64bit", result()), "20261122", rng.IntN(600), 5+rng.IntN(90))
		if rng.IntN(50) == 0 {
			first := cj
			first.ID, first.Result, first.CloneID = cj.ID-1, openqa.ResultFailed, cj.ID
			cj.OriginID = first.ID
			curJobs = append(curJobs, first)
		}
		curJobs = append(curJobs, cj)
	}
	return checks.Input{
		Compose:  fedfind.MustParseComposeID(c),
		Images:   cur,
		Expected: fedfind.DefaultExpectedImages()[fedfind.StreamRawhide],
		Jobs:     curJobs,
		Previous: &checks.Previous{Compose: fedfind.MustParseComposeID(p), Images: prev, Jobs: prevJobs},
	}
}
